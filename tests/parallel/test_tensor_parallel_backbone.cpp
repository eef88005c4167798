// Tensor-parallel backbones against one process: BERT, GPT-2, Llama and Gemma 3 (grouped-query attention
// with its key/value heads sharded) with their layers sharded Megatron-style
// over a tp group of 2 (np=2: the world; np=4: two groups) must give the same hidden states and, after
// gathering shards and summing partial gradients over the group, the same gradients as the unsharded
// model every rank also loads. Dropout is on (masks keyed by sample and global head/column). At np=1
// there is no group to shard over and the tests skip on every rank alike.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "adapters/method.h"
#include "adapters/method_registry.h"
#include "core/backbones/backbone.h"
#include "core/backbones/bert_model.h"
#include "parallel/process_grid.h"
#include "parallel/tensor_parallel_group.h"
#include "tests/parallel/mpi_test_env.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

namespace ladder {
namespace {

using core::Tensor;

struct TpCase {
  std::string method;  // "full", "lora" (all six Linears, dropout), "bitfit"
  std::string family = "bert";  // bert, gpt2, llama, gemma3
};

// Writes the tiny model once per rank (ranks may share a file system; each gets its own directory).
std::string model_dir(const std::string& family, int world_rank) {
  const std::string d = test::temp_dir("tp_" + family + "_" + std::to_string(world_rank));
  if (family == "gpt2") return test::write_tiny_gpt2(d, 11, 0.1f);
  if (family == "llama" || family == "gemma3") return test::write_tiny_llama(d, 11, family == "gemma3", 0.1f);
  return test::write_tiny_bert(d, 11, 0.1f);
}

std::vector<std::unique_ptr<adapters::Method>> apply(core::Backbone& m, const std::string& method) {
  adapters::MethodConfig o;
  o.set("lora_r", 4);
  o.set("lora_dropout", 0.1f);
  std::vector<std::string> targets = {m.name() == "gpt2" ? "qkv" : "query", "attention_output", "ffn_in", "ffn_out"};
  if (m.name() != "gpt2") targets.insert(targets.end(), {"key", "value"});
  o.set("lora_targets", targets);
  auto methods = adapters::apply_methods(m, method, o);
  // LoRA's B starts at zero, which would leave A's gradient zero: give B values (the same on every layout).
  for (auto& p : m.params().all())
    if (p->name.size() > 7 && p->name.compare(p->name.size() - 7, 7, ".lora_B") == 0) {
      const Tensor& v = p->value;
      // Values by full row index, so a shard holds the rows of the full tensor.
      const auto [r0, r1] = p->shard.sharded() ? p->shard.range() : std::pair<int64_t, int64_t>{0, v.dim(0)};
      const int64_t rows_per_block = p->shard.sharded() ? (r1 - r0) : v.dim(0);
      const int64_t block = p->shard.sharded() ? p->shard.full[0] / p->shard.blocks : v.dim(0);
      for (int64_t i = 0; i < v.dim(0); ++i) {
        const int64_t k = i / rows_per_block, full_row = k * block + r0 + i % rows_per_block;
        for (int64_t j = 0; j < v.dim(1); ++j) v.data<float>()[i * v.dim(1) + j] = 0.05f * std::sin(float(full_row * 7 + j));
      }
    }
  m.params().allocate_gradients();
  return methods;
}

void run_step(core::Backbone& m, const test::TinyBatch& tb, const std::vector<float>& d_last) {
  core::StepOptions o;
  o.training = true;
  o.save_for_backward = true;
  o.seed = 1234;
  m.params().zero_grad();
  m.forward(tb.view(), o);
  m.backward(d_last.data());
}

class TensorParallelBackbone : public ::testing::TestWithParam<TpCase> {};

TEST_P(TensorParallelBackbone, MatchesOneProcess) {
  parallel::Communicator& world = test::test_world();
  if (world.size() < 2) GTEST_SKIP() << "tensor parallelism needs at least 2 ranks";
  const TpCase s = GetParam();
  parallel::ProcessGrid grid(world, 2);
  parallel::CommTensorParallelGroup group(grid.tp_comm());
  const std::string dir = model_dir(s.family, world.rank());
  auto ref = core::load_backbone(dir);
  auto tp = core::load_backbone(dir, &group);
  auto m_ref = apply(*ref, s.method);
  auto m_tp = apply(*tp, s.method);
  ASSERT_EQ(ref->params().trainable().size(), tp->params().trainable().size());

  test::TinyBatch tb(ref->config().vocab_size);
  const int C = ref->config().hidden;
  const std::vector<float> d_last = test::randn(size_t(tb.B * tb.T * C), 5, 1.0f);
  run_step(*ref, tb, d_last);
  run_step(*tp, tb, d_last);

  const Tensor a = ref->last_hidden(), b = tp->last_hidden();
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  EXPECT_LT(worst, 2e-5) << "last hidden state";

  int sharded = 0, partial = 0;
  for (core::Parameter* p : tp->params().trainable()) {
    Tensor g = p->grad.clone(core::MemCategory::workspace);
    if (p->tp_partial_grad) {
      grid.tp_comm().all_reduce(g.data<float>(), size_t(g.numel()), parallel::ReduceOp::sum);
      ++partial;
    }
    if (p->shard.sharded()) ++sharded;
    const Tensor full = core::gather_whole(g, p->shard, &group, core::MemCategory::workspace);
    const Tensor& want = ref->params().at(p->name).grad;
    ASSERT_EQ(full.shape(), want.shape()) << p->name;
    // Relative to the tensor's largest gradient, floored: K's bias gets a gradient that is zero up to
    // rounding (softmax ignores a shift shared by all keys).
    double scale = 1e-2, err = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      scale = std::max(scale, double(std::fabs(want.data<float>()[i])));
      err = std::max(err, double(std::fabs(want.data<float>()[i] - full.data<float>()[i])));
    }
    EXPECT_LT(err / scale, 2e-4) << p->name << " (" << p->shard.describe() << ")";
    // And the values themselves: a shard is the part of the unsharded tensor.
    const Tensor v = core::gather_whole(p->value, p->shard, &group, core::MemCategory::workspace);
    const Tensor& wv = ref->params().at(p->name).value;
    const std::vector<float> wvf = wv.to_floats();
    for (int64_t i = 0; i < wv.numel(); ++i) ASSERT_EQ(v.data<float>()[i], wvf[size_t(i)]) << p->name;
  }
  if (s.method != "bitfit") {
    EXPECT_GT(sharded, 0);
  }
  if (s.method == "lora") {
    EXPECT_GT(partial, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, TensorParallelBackbone,
                         ::testing::Values(TpCase{"full", "bert"}, TpCase{"lora", "bert"}, TpCase{"bitfit", "bert"},
                                           TpCase{"full", "gpt2"}, TpCase{"lora", "gpt2"}, TpCase{"ia3", "bert"},
                                           TpCase{"ia3", "gpt2"}, TpCase{"full", "llama"}, TpCase{"lora", "llama"},
                                           TpCase{"ia3", "llama"}, TpCase{"full", "gemma3"}, TpCase{"lora", "gemma3"}),
                         [](const auto& info) { return info.param.method + "_" + info.param.family; });

TEST(TensorParallelBackbone, FrozenBytesSplit) {
  parallel::Communicator& world = test::test_world();
  if (world.size() < 2) GTEST_SKIP() << "tensor parallelism needs at least 2 ranks";
  parallel::ProcessGrid grid(world, 2);
  parallel::CommTensorParallelGroup group(grid.tp_comm());
  const std::string dir = model_dir("bert", world.rank());
  auto ref = core::load_backbone(dir);
  auto tp = core::load_backbone(dir, &group);
  // Every sharded tensor's parts add up to the whole, and a shard holds only its part's bytes.
  for (auto& p : tp->params().all()) {
    const auto& full = ref->params().at(p->name).value;
    if (!p->shard.sharded()) {
      EXPECT_EQ(p->value.shape(), full.shape()) << p->name;
      continue;
    }
    EXPECT_EQ(p->value.shape(), p->shard.local_shape()) << p->name;
    EXPECT_EQ(p->value.storage()->bytes(), p->value.nbytes()) << p->name << ": the shard must not hold the whole tensor";
    int64_t n = p->value.numel();
    std::vector<double> v{double(n)};
    grid.tp_comm().all_reduce(v.data(), 1, parallel::ReduceOp::sum);
    EXPECT_EQ(int64_t(v[0]), full.numel()) << p->name;
  }
}

TEST(TensorParallelBackbone, HeadsThatDoNotDivideAreRefused) {
  parallel::Communicator& world = test::test_world();
  if (world.size() < 4) GTEST_SKIP() << "needs 4 ranks (a tp group of 4 over a 2-head model)";
  parallel::ProcessGrid grid(world, 4);
  parallel::CommTensorParallelGroup group(grid.tp_comm());
  const std::string dir = model_dir("bert", world.rank());
  try {
    core::load_backbone(dir, &group);
    FAIL() << "a 2-head model split over 4 ranks must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide the model's 2 attention heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ladder

namespace ladder {
namespace {

// Grouped-query attention splits whole key/value heads: a model with fewer of them than ranks (Gemma 3 270M
// has one) is refused by name rather than sharded wrongly.
TEST(TensorParallelBackbone, KeyValueHeadsThatDoNotDivideAreRefused) {
  parallel::Communicator& world = test::test_world();
  if (world.size() < 2) GTEST_SKIP() << "tensor parallelism needs at least 2 ranks";
  parallel::ProcessGrid grid(world, 2);
  parallel::CommTensorParallelGroup group(grid.tp_comm());
  const std::string dir = model_dir("llama", world.rank());
  {
    std::ifstream in(dir + "/config.json");
    std::string cfg((std::istreambuf_iterator<char>(in)), {});
    const size_t at = cfg.find("\"num_key_value_heads\": 2");
    ASSERT_NE(at, std::string::npos) << cfg;
    cfg.replace(at, 24, "\"num_key_value_heads\": 1");
    std::ofstream(dir + "/config.json") << cfg;
  }
  try {
    core::load_backbone(dir, &group);
    FAIL() << "one key/value head split over 2 ranks must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide the model's 1 key/value heads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ladder
