// Golden parity with Hugging Face transformers on committed fixtures (tests/golden/README.md says how
// they were made): the real all-MiniLM-L6-v2 hidden states, pooler output and sentence embeddings, and a
// small random-weight GPT-2's logits, LM loss and the gradient of every parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"
#include "core/io/safetensors.h"
#include "core/kernels/losses.h"
#include "tests/support/test_paths.h"

using namespace ladder::core;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  auto x = a.to_floats(), y = b.to_floats();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::fabs(double(x[i]) - y[i]));
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (float v : a.to_floats()) m = std::max(m, std::fabs(double(v)));
  return m;
}

std::vector<float> mask_floats(const Tensor& m) {
  std::vector<float> out;
  for (float v : m.to_floats()) out.push_back(v);
  return out;
}

}  // namespace

TEST(GoldenParity, MiniLmHiddenStatesPoolerAndSentenceEmbeddings) {
  const std::string model_dir = ladder::test::minilm_dir();
  if (::testing::Test::HasFailure()) return;
  auto golden = SafetensorsFile::open(ladder::test::golden_dir() + "/minilm_hidden.safetensors");
  Tensor ids = golden->tensor("input_ids", MemCategory::workspace);
  Tensor types = golden->tensor("token_type_ids", MemCategory::workspace);
  std::vector<float> mask = mask_floats(golden->tensor("attention_mask", MemCategory::workspace));
  const int B = int(ids.dim(0)), T = int(ids.dim(1));
  ASSERT_GE(B, 8);

  auto backbone = load_backbone(model_dir);
  auto* bert = dynamic_cast<BertModel*>(backbone.get());
  ASSERT_NE(bert, nullptr);
  const int C = bert->config().hidden;
  StepOptions opt;
  opt.keep_hidden_states = true;
  bert->forward({B, T, ids.data<int32_t>(), types.data<int32_t>(), mask.data()}, opt);

  for (int i = 0; i <= bert->config().layers; ++i) {
    Tensor ref = golden->tensor("hidden_state." + std::to_string(i), MemCategory::workspace);
    double err = max_abs_diff(bert->hidden_state(i), ref);
    std::printf("MiniLM hidden_state.%d max abs error %.2e\n", i, err);
    EXPECT_LE(err, 1e-4) << "hidden_state." << i;
  }
  EXPECT_LE(max_abs_diff(bert->pooled(), golden->tensor("pooler_output", MemCategory::workspace)), 1e-4);

  Tensor pooled = Tensor::zeros({B, C}, DType::f32, MemCategory::workspace);
  mean_pool(pooled.data<float>(), bert->last_hidden().data<float>(), mask.data(), B, T, C);
  EXPECT_LE(max_abs_diff(pooled, golden->tensor("mean_pooled", MemCategory::workspace)), 1e-4);
  l2_normalize_rows(pooled.data<float>(), B, C);
  const double emb_err = max_abs_diff(pooled, golden->tensor("sentence_embedding", MemCategory::workspace));
  std::printf("MiniLM sentence embedding max abs error %.2e\n", emb_err);
  EXPECT_LE(emb_err, 1e-5);
}

TEST(GoldenParity, TinyGpt2LogitsLossAndEveryGradient) {
  const std::string dir = ladder::test::golden_dir() + "/tiny_gpt2";
  auto golden = SafetensorsFile::open(ladder::test::golden_dir() + "/tiny_gpt2_golden.safetensors");
  auto backbone = load_backbone(dir);
  auto* gpt = dynamic_cast<Gpt2Model*>(backbone.get());
  ASSERT_NE(gpt, nullptr);
  gpt->params().set_all_trainable(true);
  gpt->params().allocate_gradients();

  Tensor ids = golden->tensor("input_ids", MemCategory::workspace);
  std::vector<float> mask = mask_floats(golden->tensor("attention_mask", MemCategory::workspace));
  const int B = int(ids.dim(0)), T = int(ids.dim(1)), N = B * T, V = gpt->config().vocab_size;
  StepOptions opt;
  opt.save_for_backward = true;
  gpt->forward({B, T, ids.data<int32_t>(), nullptr, mask.data()}, opt);
  Tensor logits;
  gpt->lm_logits(logits);
  Tensor ref_logits = golden->tensor("logits", MemCategory::workspace);
  // Hugging Face computes logits for padded positions too; compare every position.
  std::printf("tiny GPT-2 logits max abs error %.2e\n", max_abs_diff(logits, ref_logits));
  EXPECT_LE(max_abs_diff(logits, ref_logits), 1e-4);
  for (int i = 0; i < gpt->config().layers; ++i)
    EXPECT_LE(max_abs_diff(gpt->hidden_state(i), golden->tensor("hidden_state." + std::to_string(i), MemCategory::workspace)), 1e-4)
        << "hidden_state." << i;

  std::vector<int32_t> targets(static_cast<size_t>(N));
  causal_lm_targets(targets.data(), ids.data<int32_t>(), mask.data(), B, T, -100);
  float loss = cross_entropy_forward(logits.data<float>(), targets.data(), N, V, -100);
  EXPECT_NEAR(loss, golden->tensor("loss", MemCategory::workspace).to_floats()[0], 1e-5);

  Tensor dlogits = Tensor::zeros({N, V}, DType::f32, MemCategory::workspace);
  cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), targets.data(), N, V, -100, 1.0f);
  gpt->backward_from_logits(dlogits.data<float>());
  int checked = 0;
  double worst_rel = 0;
  for (auto& p : gpt->params().all()) {
    const std::string key = "grad.transformer." + p->name;
    ASSERT_TRUE(golden->has(key)) << key;
    Tensor ref = golden->tensor(key, MemCategory::workspace);
    double rel = max_abs_diff(p->grad, ref) / std::max(max_abs(ref), 1e-12);
    worst_rel = std::max(worst_rel, rel);
    EXPECT_LE(rel, 1e-4) << p->name << " (max |ref| " << max_abs(ref) << ")";
    ++checked;
  }
  std::printf("tiny GPT-2: %d parameter gradients, worst max|diff|/max|ref| %.2e\n", checked, worst_rel);
  EXPECT_EQ(checked, int(gpt->params().all().size()));
  EXPECT_GT(checked, 20);
}
