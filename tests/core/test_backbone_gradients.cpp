// Finite-difference checks of whole BERT and GPT-2 stacks (directional, per parameter tensor, since
// single-element differences through a deep float32 stack drown in rounding): every parameter's gradient, with dropout on,
// padding, segment ids, the pooler, the tied LM head and a gradient injected at a layer boundary.
#include <gtest/gtest.h>

#include <random>

#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"
#include "core/kernels/losses.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_models.h"

using namespace ladder::core;
using ladder::test::expect_directional_grad_ok;
using ladder::test::randn;

namespace {

struct Inputs {
  int B = 2, T = 6;
  std::vector<int32_t> ids, types;
  std::vector<float> mask;
  TokenBatch batch() const { return {B, T, ids.data(), types.data(), mask.data()}; }
};

Inputs make_inputs(int vocab) {
  Inputs in;
  std::mt19937 g(3);
  for (int i = 0; i < in.B * in.T; ++i) {
    in.ids.push_back(int32_t(g() % vocab));
    in.types.push_back(i % in.T >= 3 ? 1 : 0);
    in.mask.push_back(i >= in.T && i % in.T >= 4 ? 0.0f : 1.0f);  // row 1 has two padded positions
  }
  return in;
}

double dot(const Tensor& t, const std::vector<float>& r) {
  const float* p = t.data<float>();
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += double(p[i]) * r[i];
  return s;
}

}  // namespace

TEST(BackboneGradients, BertEveryParameter) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("bert_grad"), 11);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel m(cfg, SafetensorsCheckpoint::open_dir(dir));
  m.params().set_all_trainable(true);
  m.params().allocate_gradients();
  Inputs in = make_inputs(cfg.vocab_size);
  const TokenBatch b = in.batch();
  const int N = b.rows(), C = cfg.hidden;
  auto r_last = randn(size_t(N) * C, 5), r_pool = randn(size_t(b.B) * C, 6), r_mid = randn(size_t(N) * C, 7);
  StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = 1234;

  m.forward(b, opt);
  std::vector<const float*> inject(size_t(cfg.layers + 1), nullptr);
  inject[1] = r_mid.data();
  m.backward(r_last.data(), r_pool.data(), inject);

  StepOptions eval_opt = opt;
  eval_opt.save_for_backward = false;
  eval_opt.keep_hidden_states = true;
  auto loss = [&]() {
    m.forward(b, eval_opt);
    return dot(m.last_hidden(), r_last) + dot(m.pooled(), r_pool) + dot(m.hidden_state(1), r_mid);
  };
  for (auto& p : m.params().all()) {
    std::vector<float> analytic = p->grad.to_floats();
    expect_directional_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), analytic.data(), 1e-2, 5e-3, 3e-3);
  }
}

TEST(BackboneGradients, BertFrozenBackboneGetsNoGradientBuffers) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("bert_frozen"), 12);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel m(cfg, SafetensorsCheckpoint::open_dir(dir));
  m.params().set_trainable("encoder.layer.1.output.dense.bias", true);
  m.params().allocate_gradients();
  EXPECT_EQ(m.params().trainable().size(), 1u);
  EXPECT_EQ(m.params().gradient_buffer().numel(), cfg.hidden);
  for (auto& p : m.params().all())
    if (!p->trainable) {
      EXPECT_FALSE(p->grad.defined()) << p->name;
    }
  Inputs in = make_inputs(cfg.vocab_size);
  StepOptions opt;
  opt.save_for_backward = true;
  m.forward(in.batch(), opt);
  auto r = randn(size_t(in.B * in.T * cfg.hidden), 9);
  m.backward(r.data());
  // d(bias of the last FFN output) before output.LayerNorm is non-zero.
  double s = 0;
  for (float g : m.params().at("encoder.layer.1.output.dense.bias").grad.to_floats()) s += std::fabs(g);
  EXPECT_GT(s, 0.0);
}

TEST(BackboneGradients, Gpt2EveryParameterThroughTiedLmHead) {
  auto dir = ladder::test::write_tiny_gpt2(ladder::test::temp_dir("gpt2_grad"), 21);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  Gpt2Model m(cfg, SafetensorsCheckpoint::open_dir(dir));
  m.params().set_all_trainable(true);
  m.params().allocate_gradients();
  Inputs in = make_inputs(cfg.vocab_size);
  const TokenBatch b = in.batch();
  const int N = b.rows(), V = cfg.vocab_size, C = cfg.hidden;
  std::vector<int32_t> targets(static_cast<size_t>(N));
  causal_lm_targets(targets.data(), in.ids.data(), in.mask.data(), b.B, b.T, -100);
  auto r_mid = randn(size_t(N) * C, 8);
  StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = 99;

  Tensor logits, dlogits = Tensor::zeros({N, V}, DType::f32, MemCategory::workspace);
  m.forward(b, opt);
  m.lm_logits(logits);
  cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), targets.data(), N, V, -100, 1.0f);
  std::vector<const float*> inject(size_t(cfg.layers + 1), nullptr);
  inject[1] = r_mid.data();
  m.backward_from_logits(dlogits.data<float>(), inject);

  StepOptions eval_opt = opt;
  eval_opt.save_for_backward = false;
  eval_opt.keep_hidden_states = true;
  Tensor lg;
  auto loss = [&]() {
    m.forward(b, eval_opt);
    m.lm_logits(lg);
    return double(cross_entropy_forward(lg.data<float>(), targets.data(), N, V, -100)) + dot(m.hidden_state(1), r_mid);
  };
  for (auto& p : m.params().all()) {
    std::vector<float> analytic = p->grad.to_floats();
    expect_directional_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), analytic.data(), 1e-2, 5e-3, 3e-3);
  }
}

TEST(BackboneGradients, CausalTargetsSkipPaddingAndLastPosition) {
  std::vector<int32_t> ids = {5, 6, 7, 8, 1, 2, 3, 4};
  std::vector<float> mask = {1, 1, 1, 1, 1, 1, 0, 0};
  std::vector<int32_t> t(8);
  causal_lm_targets(t.data(), ids.data(), mask.data(), 2, 4, -100);
  EXPECT_EQ(t, (std::vector<int32_t>{6, 7, 8, -100, 2, -100, -100, -100}));
}

// Freezing parts of the stack must not change the gradients of what stays trainable, and layers below the
// lowest trainable one (and inputs of frozen Linears) must keep no activations.
TEST(BackboneGradients, PartialTrainabilityKeepsGradientsAndSavesLess) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("bert_partial"), 13);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel full(cfg, SafetensorsCheckpoint::open_dir(dir)), part(cfg, SafetensorsCheckpoint::open_dir(dir));
  full.params().set_all_trainable(true);
  full.params().allocate_gradients();
  for (auto& p : part.params().all()) {
    const bool upper = p->name.rfind("encoder.layer.1.", 0) == 0 || p->name.rfind("pooler.", 0) == 0;
    part.params().set_trainable(p->name, upper && p->name.find("intermediate.dense") == std::string::npos);
  }
  part.params().allocate_gradients();
  Inputs in = make_inputs(cfg.vocab_size);
  const int N = in.B * in.T, C = cfg.hidden;
  auto r_last = randn(size_t(N) * C, 15), r_pool = randn(size_t(in.B) * C, 16);
  StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = 5;
  auto& mt = MemoryTracker::instance();
  const size_t before_full = mt.current(0, MemCategory::activations);
  full.forward(in.batch(), opt);
  const size_t saved_full = mt.current(0, MemCategory::activations) - before_full;
  full.backward(r_last.data(), r_pool.data(), {});
  const size_t before_part = mt.current(0, MemCategory::activations);
  part.forward(in.batch(), opt);
  const size_t saved_part = mt.current(0, MemCategory::activations) - before_part;
  part.backward(r_last.data(), r_pool.data(), {});
  EXPECT_LT(saved_part * 2, saved_full) << "part saved " << saved_part << " bytes, full " << saved_full;
  int compared = 0;
  for (auto* p : part.params().trainable()) {
    auto a = p->grad.to_floats(), b = full.params().at(p->name).grad.to_floats();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 + 1e-5 * std::fabs(b[i])) << p->name << "[" << i << "]";
    ++compared;
  }
  EXPECT_GT(compared, 10);
}
