// GradientBuckets: bucket boundaries, in-place versus staged buckets, results equal to one plain
// all-reduce average of everything, launch order independent of ready order, byte counts, no allocations.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/tensor/memory.h"
#include "parallel/gradient_buckets.h"
#include "tests/parallel/mpi_test_env.h"

using ladder::parallel::GradientBuckets;
using ladder::parallel::GradSpan;
using ladder::parallel::ReduceOp;
using ladder::test::test_world;

namespace {

// Multiples of 1/8 in [-64, 64]: sums of up to 4 ranks and the division by 2 or 4 are exact in float, so
// the bucketed result must equal the plain one bit for bit whatever order MPI sums in.
std::vector<float> rank_values(size_t n, unsigned seed) {
  std::mt19937 g(seed + 1000u * unsigned(test_world().rank()));
  std::vector<float> v(n);
  for (auto& x : v) x = float(int(g() % 1025) - 512) / 8.0f;
  return v;
}

// Layer sizes in forward order; backward produces them reversed.
const std::vector<size_t> kLayer = {300, 1000, 20, 4000, 700, 1, 2500};

// Spans over one contiguous buffer laid out in forward order, listed in backward order.
std::vector<GradSpan> backward_spans(std::vector<float>& buf) {
  std::vector<GradSpan> s;
  std::vector<size_t> off;
  size_t o = 0;
  for (size_t c : kLayer) {
    off.push_back(o);
    o += c;
  }
  buf.resize(o);
  for (size_t i = kLayer.size(); i-- > 0;) s.push_back({"layer" + std::to_string(i), buf.data() + off[i], kLayer[i]});
  return s;
}

}  // namespace

TEST(GradientBuckets, BoundariesFollowBackwardOrderAndByteLimit) {
  // Construction is local (no communication), so this runs identically on every rank.
  std::vector<float> a(100), b(200), c(50), d(300), e(10), f(500);
  std::vector<GradSpan> spans = {{"a", a.data(), 100}, {"b", b.data(), 200}, {"c", c.data(), 50},
                                 {"d", d.data(), 300}, {"e", e.data(), 10},  {"f", f.data(), 500}};
  GradientBuckets gb(test_world(), spans, 300 * sizeof(float));
  const auto& bk = gb.buckets();
  ASSERT_EQ(bk.size(), 5u);
  // a+b = 300 floats fills the first; c+d would be 350 > 300; d alone; e; f (500) alone though oversized.
  EXPECT_EQ(bk[0].first, 0u); EXPECT_EQ(bk[0].last, 2u); EXPECT_EQ(bk[0].count, 300u);
  EXPECT_EQ(bk[1].first, 2u); EXPECT_EQ(bk[1].last, 3u); EXPECT_EQ(bk[1].count, 50u);
  EXPECT_EQ(bk[2].first, 3u); EXPECT_EQ(bk[2].last, 4u); EXPECT_EQ(bk[2].count, 300u);
  EXPECT_EQ(bk[3].first, 4u); EXPECT_EQ(bk[3].last, 5u); EXPECT_EQ(bk[3].count, 10u);
  EXPECT_EQ(bk[4].first, 5u); EXPECT_EQ(bk[4].last, 6u); EXPECT_EQ(bk[4].count, 500u);
  // Separate vectors: a two-span bucket must be staged; a one-span bucket is always in place.
  EXPECT_EQ(bk[0].in_place, nullptr);
  EXPECT_EQ(bk[2].in_place, d.data());
  EXPECT_EQ(gb.bucket_bytes(), 300 * sizeof(float));
}

TEST(GradientBuckets, AdjacentSpansInReverseOrderAreReducedInPlace) {
  std::vector<float> buf;
  auto spans = backward_spans(buf);
  GradientBuckets gb(test_world(), spans, 5000 * sizeof(float));
  // Backward order: 2500, 1, 700 | 4000, 20 | 1000, 300  (each group tiles one address range).
  const auto& bk = gb.buckets();
  ASSERT_EQ(bk.size(), 3u);
  EXPECT_EQ(bk[0].count, 3201u);
  EXPECT_EQ(bk[1].count, 4020u);
  EXPECT_EQ(bk[2].count, 1300u);
  for (const auto& b : bk) EXPECT_NE(b.in_place, nullptr);
  EXPECT_EQ(bk[0].in_place, spans[2].data);  // the lowest address of layers 4..6
}

TEST(GradientBuckets, EqualsOnePlainAverageInPlaceAndStaged) {
  auto& w = test_world();
  // In place: one buffer, spans in backward order.
  std::vector<float> buf;
  auto spans = backward_spans(buf);
  const auto values = rank_values(buf.size(), 1);
  std::copy(values.begin(), values.end(), buf.begin());
  std::vector<float> expect = values;
  w.all_reduce(expect.data(), expect.size(), ReduceOp::average);

  GradientBuckets gb(w, spans, 2048 * sizeof(float));
  for (size_t i = 0; i < spans.size(); ++i) gb.mark_ready(i);
  gb.finish();
  EXPECT_EQ(buf, expect);

  // Staged: the same layers in separate vectors.
  std::vector<std::vector<float>> layers;
  size_t o = 0;
  for (size_t c : kLayer) {
    layers.emplace_back(values.begin() + long(o), values.begin() + long(o + c));
    o += c;
  }
  std::vector<GradSpan> sep;
  for (size_t i = layers.size(); i-- > 0;) sep.push_back({"layer" + std::to_string(i), layers[i].data(), layers[i].size()});
  GradientBuckets staged(w, sep, 5000 * sizeof(float));
  EXPECT_EQ(staged.buckets()[0].in_place, nullptr);
  for (size_t i = 0; i < sep.size(); ++i) staged.mark_ready(i);
  staged.finish();
  o = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(layers[i], std::vector<float>(expect.begin() + long(o), expect.begin() + long(o + kLayer[i]))) << "layer " << i;
    o += kLayer[i];
  }
}

TEST(GradientBuckets, ReadyOrderMayDifferBetweenRanks) {
  auto& w = test_world();
  std::vector<float> buf;
  auto spans = backward_spans(buf);
  const auto values = rank_values(buf.size(), 2);
  std::copy(values.begin(), values.end(), buf.begin());  // (assigning a temporary would move and dangle the spans)
  std::vector<float> expect = buf;
  w.all_reduce(expect.data(), expect.size(), ReduceOp::average);
  GradientBuckets gb(w, spans, 1000 * sizeof(float));
  // Odd ranks mark in reverse: buckets still launch in index order everywhere, so the collectives match.
  for (size_t k = 0; k < spans.size(); ++k) gb.mark_ready(w.rank() % 2 ? spans.size() - 1 - k : k);
  gb.finish();
  EXPECT_EQ(buf, expect);
}

TEST(GradientBuckets, CountsBytesAndEarlyLaunchesPerStep) {
  auto& w = test_world();
  std::vector<float> buf;
  auto spans = backward_spans(buf);
  const size_t total = buf.size();
  GradientBuckets gb(w, spans, 5000 * sizeof(float));  // 3 buckets, the first of 3 spans
  const size_t nb = gb.buckets().size();

  // Step 1: everything marked, so every bucket starts during "backward".
  for (size_t i = 0; i < spans.size(); ++i) gb.mark_ready(i);
  gb.finish();
  EXPECT_EQ(gb.last_step().bytes_reduced, total * sizeof(float));
  EXPECT_EQ(gb.last_step().buckets, nb);
  EXPECT_EQ(gb.last_step().launched_early, nb);
  EXPECT_GE(gb.last_step().finish_ms, 0.0);

  // Step 2: only the first span marked; its bucket holds more spans, so nothing starts early.
  ASSERT_GT(gb.buckets()[0].last - gb.buckets()[0].first, 1u);
  gb.mark_ready(0);
  gb.finish();
  EXPECT_EQ(gb.last_step().launched_early, 0u);
  EXPECT_EQ(gb.last_step().bytes_reduced, total * sizeof(float));
  EXPECT_EQ(gb.steps(), 2u);
  EXPECT_EQ(gb.total_bytes_reduced(), 2 * total * sizeof(float));
}

TEST(GradientBuckets, MarkingTwiceOrOutOfRangeIsAnError) {
  auto& w = test_world();
  std::vector<float> a(10, 1.0f), b(10, 1.0f);
  GradientBuckets gb(w, {{"a", a.data(), 10}, {"b", b.data(), 10}}, 1 << 20);
  gb.mark_ready(0);
  EXPECT_THROW(gb.mark_ready(0), std::logic_error);
  EXPECT_THROW(gb.mark_ready(2), std::out_of_range);
  gb.mark_ready(1);
  gb.finish();
  EXPECT_EQ(a, std::vector<float>(10, 1.0f));  // the average of equal values
}

TEST(GradientBuckets, StepsAllocateNothing) {
  auto& w = test_world();
  std::vector<std::vector<float>> layers;
  for (size_t c : kLayer) layers.emplace_back(c, 0.5f);
  std::vector<GradSpan> sep;
  for (size_t i = layers.size(); i-- > 0;) sep.push_back({"layer" + std::to_string(i), layers[i].data(), layers[i].size()});
  auto& mt = ladder::core::MemoryTracker::instance();
  const size_t comm_before = mt.current(0, ladder::core::MemCategory::communication);
  GradientBuckets gb(w, sep, 3000 * sizeof(float));
  // The staging buffer is accounted as communication memory.
  EXPECT_GT(mt.current(0, ladder::core::MemCategory::communication), comm_before);
  const size_t allocs = mt.allocations();
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < sep.size(); ++i) gb.mark_ready(i);
    gb.finish();
  }
  EXPECT_EQ(mt.allocations(), allocs);
  EXPECT_EQ(layers[3], std::vector<float>(kLayer[3], 0.5f));
}
