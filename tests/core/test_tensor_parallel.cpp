// The region functions sum over the group (and do nothing without one); ShardSpec cuts: every part's
// extract/place round-trips into the whole (even, uneven, blocked, 1-D), and mismatched shapes or groups
// are clear errors.
#include <gtest/gtest.h>

#include <numeric>

#include "core/modules/tensor_parallel_regions.h"

using namespace ladder::core;

namespace {

// A group that only answers rank()/size(): enough to reach gather_whole's argument checks.
struct FixedGroup : TensorParallelGroup {
  int r, n;
  FixedGroup(int rank, int size) : r(rank), n(size) {}
  int rank() const override { return r; }
  int size() const override { return n; }
  void all_reduce_sum(float*, size_t) override { FAIL() << "no collective expected"; }
};

void round_trip(const Shape& full, int dim, int parts, int blocks) {
  std::vector<float> whole(size_t(shape_numel(full)));
  std::iota(whole.begin(), whole.end(), 1.0f);
  std::vector<float> rebuilt(whole.size(), 0.0f);
  int64_t total = 0;
  for (int p = 0; p < parts; ++p) {
    ShardSpec s{dim, p, parts, blocks, full};
    std::vector<float> local(size_t(shape_numel(s.local_shape())), -1.0f);
    extract_shard(local.data(), whole.data(), s, p);
    for (float v : local) EXPECT_GT(v, 0.0f) << s.describe();  // every local element came from the whole
    place_shard(rebuilt.data(), local.data(), s, p);
    total += int64_t(local.size());
  }
  EXPECT_EQ(total, shape_numel(full));
  EXPECT_EQ(rebuilt, whole) << "dim " << dim << " parts " << parts << " blocks " << blocks;
}

}  // namespace

TEST(TensorParallelShards, PartsRoundTripIntoTheWhole) {
  round_trip({8, 6}, 0, 2, 1);   // rows, even
  round_trip({7, 5}, 0, 3, 1);   // rows, uneven (a vocabulary that tp does not divide)
  round_trip({4, 12}, 1, 2, 1);  // columns
  round_trip({4, 12}, 1, 2, 3);  // columns in q | k | v blocks (GPT-2's c_attn)
  round_trip({12}, 0, 4, 3);     // a blocked bias
}

TEST(TensorParallelShards, UnevenPartsCoverTheExtentInOrder) {
  ShardSpec s{0, 0, 4, 1, {30522, 8}};
  int64_t next = 0;
  for (int p = 0; p < 4; ++p) {
    auto [b, e] = s.range_of(p);
    EXPECT_EQ(b, next);
    EXPECT_GE(e - b, 7630);
    next = e;
  }
  EXPECT_EQ(next, 30522);
}

TEST(TensorParallelShards, ShardOfTakesThisRanksPartAndChecksTheShape) {
  Tensor whole = Tensor::from_floats({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2}, MemCategory::workspace);
  const Tensor part = shard_of(whole, ShardSpec{0, 1, 2, 1, {4, 2}}, MemCategory::workspace);
  EXPECT_EQ(part.shape(), (Shape{2, 2}));
  EXPECT_EQ(part.to_floats(), (std::vector<float>{4, 5, 6, 7}));
  try {
    shard_of(whole, ShardSpec{0, 1, 2, 1, {2, 4}}, MemCategory::workspace);
    FAIL() << "a [4, 2] tensor cut as [2, 4] must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 2]"), std::string::npos) << e.what();
  }
}

TEST(TensorParallelShards, GatherWholeRefusesAShardOfAnotherGroup) {
  Tensor part = Tensor::zeros({2, 2}, DType::f32, MemCategory::workspace);
  FixedGroup g(0, 2);
  // Part 2 of 2 handed in on rank 0, and a 3-way cut in a group of 2.
  EXPECT_THROW(gather_whole(part, ShardSpec{0, 1, 2, 1, {4, 2}}, &g, MemCategory::workspace), std::invalid_argument);
  EXPECT_THROW(gather_whole(part, ShardSpec{0, 0, 3, 1, {6, 2}}, &g, MemCategory::workspace), std::invalid_argument);
  // Replicated, or no group: a copy, no collective.
  EXPECT_EQ(gather_whole(part, ShardSpec{-1, 0, 1, 1, {2, 2}}, &g, MemCategory::workspace).shape(), (Shape{2, 2}));
}

namespace {

// A group of `n` ranks that all hold the same data: its sum is n times each element.
struct MirrorGroup : TensorParallelGroup {
  int n, calls = 0;
  explicit MirrorGroup(int size) : n(size) {}
  int rank() const override { return 0; }
  int size() const override { return n; }
  void all_reduce_sum(float* data, size_t count) override {
    ++calls;
    for (size_t i = 0; i < count; ++i) data[i] *= float(n);
  }
};

}  // namespace

TEST(TensorParallelRegions, ReduceAndCopyBackwardSumOverTheGroupAndAreNoOpsWithoutOne) {
  std::vector<float> x{1, 2, 3};
  MirrorGroup two(2), one(1);
  reduce_from_region(&two, x.data(), x.size());
  EXPECT_EQ(x, (std::vector<float>{2, 4, 6}));
  copy_to_region_backward(&two, x.data(), 2);
  EXPECT_EQ(x, (std::vector<float>{4, 8, 6}));
  EXPECT_EQ(two.calls, 2);
  // A group of one rank and no group at all: nothing to communicate.
  reduce_from_region(&one, x.data(), x.size());
  copy_to_region_backward(&one, x.data(), x.size());
  reduce_from_region(nullptr, x.data(), x.size());
  copy_to_region_backward(nullptr, x.data(), x.size());
  EXPECT_EQ(one.calls, 0);
  EXPECT_EQ(x, (std::vector<float>{4, 8, 6}));
  EXPECT_FALSE(tp_active(nullptr));
  EXPECT_FALSE(tp_active(&one));
  EXPECT_TRUE(tp_active(&two));
}

TEST(TensorParallelRegions, GatherBackwardTakesThisRanksPartOfTheWholeGradient) {
  // gather-from-region's backward is the shard of the whole: with two mirrored ranks the gathered whole
  // of part 1 holds part 1 in place (zeros elsewhere, times the group's sum), and its backward returns it.
  struct Rank1 : MirrorGroup {
    Rank1() : MirrorGroup(2) {}
    int rank() const override { return 1; }
  } g;
  const ShardSpec spec{0, 1, 2, 1, {4, 2}};
  Tensor part = Tensor::from_floats({4, 5, 6, 7}, {2, 2}, MemCategory::workspace);
  const Tensor whole = gather_from_region(part, spec, &g, MemCategory::workspace);
  EXPECT_EQ(whole.to_floats(), (std::vector<float>{0, 0, 0, 0, 8, 10, 12, 14}));
  EXPECT_EQ(gather_from_region_backward(whole, spec, MemCategory::workspace).to_floats(), (std::vector<float>{8, 10, 12, 14}));
}
