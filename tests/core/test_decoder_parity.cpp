// Parity of the Llama-family backbone with Hugging Face transformers on committed random-weight models
// (tests/golden/make_model_fixtures.py): a Llama with grouped-query attention and an untied head, and a
// Gemma 3 with sliding-window and global layers (their own RoPE bases), sandwich and q/k norms, scaled
// embeddings and a tied head. Logits, every hidden state, the LM loss, the gradient of every parameter, and
// a greedy continuation through the KV cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/backbones/backbone.h"
#include "core/backbones/llama_model.h"
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

// Relative to the reference's largest magnitude: what "agrees to 1e-4" means for a whole tensor.
double rel_err(const Tensor& got, const Tensor& ref) { return max_abs_diff(got, ref) / std::max(max_abs(ref), 1e-12); }

void check_family(const std::string& family, const std::string& expect_name) {
  const std::string dir = ladder::test::golden_dir() + "/tiny_" + family;
  auto golden = SafetensorsFile::open(ladder::test::golden_dir() + "/tiny_" + family + "_golden.safetensors");
  auto m = load_backbone(dir);
  ASSERT_EQ(m->name(), expect_name);
  m->params().set_all_trainable(true);
  m->params().allocate_gradients();

  Tensor ids = golden->tensor("input_ids", MemCategory::workspace);
  std::vector<float> mask = golden->tensor("attention_mask", MemCategory::workspace).to_floats();
  const int B = int(ids.dim(0)), T = int(ids.dim(1)), N = B * T, V = m->config().vocab_size;
  StepOptions opt;
  opt.save_for_backward = true;
  m->forward({B, T, ids.data<int32_t>(), nullptr, mask.data()}, opt);
  Tensor logits;
  m->lm_logits(logits);
  const double lerr = rel_err(logits, golden->tensor("logits", MemCategory::workspace));
  std::printf("tiny %s logits max relative error %.2e\n", family.c_str(), lerr);
  EXPECT_LE(lerr, 1e-5);
  for (int i = 0; i <= m->config().layers; ++i)
    EXPECT_LE(rel_err(m->hidden_state(i), golden->tensor("hidden_state." + std::to_string(i), MemCategory::workspace)), 1e-5)
        << "hidden_state." << i;

  std::vector<int32_t> targets(static_cast<size_t>(N));
  causal_lm_targets(targets.data(), ids.data<int32_t>(), mask.data(), B, T, -100);
  const float loss = cross_entropy_forward(logits.data<float>(), targets.data(), N, V, -100);
  EXPECT_NEAR(loss, golden->tensor("loss", MemCategory::workspace).to_floats()[0], 1e-5);

  Tensor dlogits = Tensor::zeros({N, V}, DType::f32, MemCategory::workspace);
  cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), targets.data(), N, V, -100, 1.0f);
  m->backward_from_logits(dlogits.data<float>());
  int checked = 0;
  double worst = 0;
  for (auto& p : m->params().all()) {
    const std::string key = p->name == "lm_head.weight" ? "grad.lm_head.weight" : "grad.model." + p->name;
    ASSERT_TRUE(golden->has(key)) << key;
    const double r = rel_err(p->grad, golden->tensor(key, MemCategory::workspace));
    worst = std::max(worst, r);
    EXPECT_LE(r, 1e-4) << p->name;
    ++checked;
  }
  std::printf("tiny %s: %d parameter gradients, worst max|diff|/max|ref| %.2e\n", family.c_str(), checked, worst);
  EXPECT_EQ(checked, int(m->params().all().size()));

  // The same loss and gradients from lm_loss, its head run 7 rows at a time (blocks that split sequences).
  dynamic_cast<LlamaModel&>(*m).set_head_block_rows(7);
  m->params().zero_grad();
  m->forward({B, T, ids.data<int32_t>(), nullptr, mask.data()}, opt);
  const Backbone::LmLoss ll = m->lm_loss(targets.data(), -100, /*backward=*/true, 1.0f);
  EXPECT_NEAR(ll.mean, golden->tensor("loss", MemCategory::workspace).to_floats()[0], 1e-5);
  EXPECT_EQ(ll.count, long(std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t != -100; })));
  for (auto& p : m->params().all()) {
    const std::string key = p->name == "lm_head.weight" ? "grad.lm_head.weight" : "grad.model." + p->name;
    EXPECT_LE(rel_err(p->grad, golden->tensor(key, MemCategory::workspace)), 1e-4) << "lm_loss: " << p->name;
  }

  // Greedy decoding with the KV cache: a prefill of 5 tokens, then one token at a time.
  std::vector<float> want = golden->tensor("greedy_ids", MemCategory::workspace).to_floats();
  std::vector<int32_t> seq(ids.data<int32_t>(), ids.data<int32_t>() + 5);
  m->begin_decoding(1, int(want.size()));
  Tensor last;
  m->decode(seq.data(), 1, 5, last);
  while (seq.size() < want.size()) {
    const float* l = last.data<float>();
    const int32_t next = int32_t(std::max_element(l, l + V) - l);
    seq.push_back(next);
    if (seq.size() < want.size()) m->decode(&seq.back(), 1, 1, last);
  }
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(seq[i], int32_t(want[i])) << "greedy token " << i;
}

}  // namespace

TEST(DecoderParity, TinyLlamaGqaUntiedHead) { check_family("llama", "llama"); }

TEST(DecoderParity, TinyGemma3SlidingWindowSandwichNorms) { check_family("gemma3", "gemma3"); }
