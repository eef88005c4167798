// Finite-difference checks of each module on its own (Linear, LayerNorm, SelfAttention, BertLayer,
// Gpt2Block): the input gradient dx and every parameter gradient for loss = sum(out * R) with a fixed random
// R, plus the memory contracts (strided rows, overwrite vs accumulate, frozen weights get no gradient work,
// and forward saves only what backward needs). The whole stacks are checked in test_backbone_gradients.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/kernels/attention.h"
#include "core/modules/backward_workspace.h"
#include "core/modules/bert_layer.h"
#include "core/modules/gpt2_block.h"
#include "core/modules/layer_norm.h"
#include "core/modules/linear.h"
#include "core/modules/parameter.h"
#include "core/modules/self_attention.h"
#include "core/modules/step_context.h"
#include "tests/support/gradcheck.h"

using namespace ladder::core;
using ladder::test::expect_directional_grad_ok;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {

constexpr float kGarbage = 1000.0f;  // pre-fill of buffers the module must OVERWRITE
// Element-wise central differences (eps 1e-2) of a float32 loss carry ~3e-5 of rounding noise; gradients
// below this floor (e.g. the key bias, whose exact gradient is 0) are compared absolutely (2e-2 * floor).
constexpr double kFloor = 3e-3;

// Registers a random f32 tensor; trainable ones get their gradient slot from allocate_gradients().
Parameter* add_param(ParameterRegistry& reg, const std::string& name, const Shape& shape, unsigned seed, float scale,
                     float offset = 0.0f) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  auto v = randn(size_t(n), seed, scale);
  for (auto& x : v) x += offset;
  return &reg.add(name, Tensor::from_floats(v, shape, MemCategory::frozen_weights));
}

double dot(const float* p, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += double(p[i]) * r[i];
  return s;
}

// Gradient minus what the buffer held before backward (parameter gradients must ACCUMULATE).
std::vector<float> grad_delta(const Parameter* p, const std::vector<float>& before) {
  std::vector<float> g = p->grad.to_floats();
  for (size_t i = 0; i < g.size(); ++i) g[i] -= before[i];
  return g;
}

// Fills every trainable gradient with random values so accumulation (not overwrite) is observable.
std::vector<std::vector<float>> prefill_grads(ParameterRegistry& reg, unsigned seed) {
  std::vector<std::vector<float>> before;
  for (auto* p : reg.trainable()) {
    auto v = randn(size_t(p->grad.numel()), seed++, 0.5f);
    std::copy(v.begin(), v.end(), p->grad.data<float>());
    before.push_back(v);
  }
  return before;
}

// Element-wise check of every trainable parameter gradient.
void check_params_elementwise(ParameterRegistry& reg, const std::vector<std::vector<float>>& before,
                              const std::function<double()>& loss, double rtol = 2e-2, double abs_floor = 1e-3) {
  auto tr = reg.trainable();
  ASSERT_EQ(tr.size(), before.size());
  for (size_t i = 0; i < tr.size(); ++i) {
    auto g = grad_delta(tr[i], before[i]);
    expect_grad_ok(tr[i]->name, loss, tr[i]->w(), size_t(tr[i]->value.numel()), g.data(), rtol, abs_floor);
  }
}

// Directional check of every trainable parameter gradient (deeper compositions).
void check_params_directional(ParameterRegistry& reg, const std::vector<std::vector<float>>& before,
                              const std::function<double()>& loss) {
  auto tr = reg.trainable();
  ASSERT_EQ(tr.size(), before.size());
  for (size_t i = 0; i < tr.size(); ++i) {
    auto g = grad_delta(tr[i], before[i]);
    expect_directional_grad_ok(tr[i]->name, loss, tr[i]->w(), size_t(tr[i]->value.numel()), g.data(), 1e-2, 5e-3,
                               3e-3, 7 + unsigned(i));
  }
}

void make_trainable(ParameterRegistry& reg, const std::vector<std::string>& names) {
  for (auto& n : names) reg.set_trainable(n, true);
}

// B=2 sequences of T=5 tokens; sequence 1 has its last two positions padded.
struct Batch {
  int B = 2, T = 5;
  std::vector<float> mask;
  Batch() {
    for (int i = 0; i < B * T; ++i) mask.push_back(i >= T && i % T >= 3 ? 0.0f : 1.0f);
  }
  TokenBatch batch() const { return {B, T, nullptr, nullptr, mask.data()}; }
};

// ---------------------------------------------------------------------------------------------------------
// Linear

struct LinearCase {
  WeightLayout layout;
  bool bias;
  bool strided;
};

class LinearModule : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearModule, GradientsStridesAndAccumulation) {
  const LinearCase c = GetParam();
  const int N = 5, IN = 6, OUT = 4;
  const int ldx = c.strided ? IN + 3 : IN, ldy = c.strided ? OUT + 2 : OUT;
  ParameterRegistry reg;
  Linear lin;
  lin.in = IN;
  lin.out = OUT;
  lin.layout = c.layout;
  const bool oi = c.layout == WeightLayout::out_in;
  lin.weight = add_param(reg, "w", oi ? Shape{OUT, IN} : Shape{IN, OUT}, 1, 0.5f);
  if (c.bias) lin.bias = add_param(reg, "b", {OUT}, 2, 0.5f);
  reg.set_all_trainable(true);
  reg.allocate_gradients();
  EXPECT_TRUE(lin.needs_input());

  // Compact x (what the checks perturb) scattered into a strided buffer whose padding is junk.
  std::vector<float> xc = randn(size_t(N) * IN, 3);
  std::vector<float> xbuf = randn(size_t(N) * ldx, 4, 100.0f);
  auto scatter = [&]() {
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < IN; ++i) xbuf[size_t(n) * ldx + i] = xc[size_t(n) * IN + i];
  };
  std::vector<float> R = randn(size_t(N) * OUT, 5);
  std::vector<float> ybuf(size_t(N) * ldy, -7.0f);
  auto loss = [&]() {
    scatter();
    lin.forward(ybuf.data(), xbuf.data(), N, c.strided ? ldy : 0, c.strided ? ldx : 0);
    double s = 0;
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < OUT; ++o) s += double(ybuf[size_t(n) * ldy + o]) * R[size_t(n) * OUT + o];
    return s;
  };

  // Forward against a direct evaluation; the padding columns of y are left alone.
  loss();
  const float* W = lin.weight->w();
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OUT; ++o) {
      double ref = c.bias ? lin.bias->w()[o] : 0.0;
      for (int i = 0; i < IN; ++i) ref += double(xc[size_t(n) * IN + i]) * (oi ? W[o * IN + i] : W[i * OUT + o]);
      ASSERT_NEAR(ybuf[size_t(n) * ldy + o], ref, 1e-4) << "y[" << n << "," << o << "]";
    }
    for (int o = OUT; o < ldy; ++o) ASSERT_EQ(ybuf[size_t(n) * ldy + o], -7.0f) << "y padding written";
  }

  // dy strided too: its padding is NaN so reading it would poison every gradient.
  std::vector<float> dybuf(size_t(N) * ldy, std::nanf(""));
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OUT; ++o) dybuf[size_t(n) * ldy + o] = R[size_t(n) * OUT + o];
  auto before = prefill_grads(reg, 10);
  std::vector<float> dxbuf(size_t(N) * ldx, kGarbage);  // overwritten: the garbage must not survive
  scatter();
  lin.backward(dxbuf.data(), dybuf.data(), xbuf.data(), N, false, c.strided ? ldx : 0, c.strided ? ldy : 0);
  std::vector<float> dx(size_t(N) * IN);
  for (int n = 0; n < N; ++n) {
    for (int i = 0; i < IN; ++i) dx[size_t(n) * IN + i] = dxbuf[size_t(n) * ldx + i];
    for (int i = IN; i < ldx; ++i) ASSERT_EQ(dxbuf[size_t(n) * ldx + i], kGarbage) << "dx padding written";
  }
  std::vector<std::vector<float>> delta1;
  for (size_t k = 0; k < reg.trainable().size(); ++k) delta1.push_back(grad_delta(reg.trainable()[k], before[k]));
  expect_grad_ok("dx", loss, xc.data(), xc.size(), dx.data());
  check_params_elementwise(reg, before, loss);

  // accumulate_dx: dx lands on top of what the buffer held (padding still untouched).
  std::vector<float> prior = randn(dxbuf.size(), 11);
  std::vector<float> acc = prior;
  scatter();
  lin.backward(acc.data(), dybuf.data(), xbuf.data(), N, true, c.strided ? ldx : 0, c.strided ? ldy : 0);
  for (int n = 0; n < N; ++n) {
    for (int i = 0; i < IN; ++i) {
      const size_t k = size_t(n) * ldx + i;
      ASSERT_NEAR(acc[k] - prior[k], dx[size_t(n) * IN + i], 1e-4) << "accumulated dx[" << n << "," << i << "]";
    }
    for (int i = IN; i < ldx; ++i) ASSERT_EQ(acc[size_t(n) * ldx + i], prior[size_t(n) * ldx + i]);
  }

  // dx == nullptr: only parameter gradients. After three backward calls each gradient is prior + 3 delta.
  lin.backward(nullptr, dybuf.data(), xbuf.data(), N, false, c.strided ? ldx : 0, c.strided ? ldy : 0);
  auto tr = reg.trainable();
  for (size_t k = 0; k < tr.size(); ++k) {
    auto d3 = grad_delta(tr[k], before[k]);
    for (size_t i = 0; i < d3.size(); ++i)
      ASSERT_NEAR(d3[i], 3.0f * delta1[k][i], 1e-4 * (1 + std::fabs(d3[i]))) << tr[k]->name << "[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Module, LinearModule,
                         ::testing::Values(LinearCase{WeightLayout::out_in, true, false},
                                           LinearCase{WeightLayout::out_in, false, false},
                                           LinearCase{WeightLayout::in_out, true, false},
                                           LinearCase{WeightLayout::in_out, false, false},
                                           LinearCase{WeightLayout::out_in, true, true},
                                           LinearCase{WeightLayout::out_in, false, true},
                                           LinearCase{WeightLayout::in_out, true, true},
                                           LinearCase{WeightLayout::in_out, false, true}),
                         [](const ::testing::TestParamInfo<LinearCase>& i) {
                           return std::string(i.param.layout == WeightLayout::out_in ? "OutIn" : "InOut") +
                                  (i.param.bias ? "Bias" : "NoBias") + (i.param.strided ? "Strided" : "Dense");
                         });

// A frozen weight gets no gradient work: backward reads no x (nullptr) and still gives dx; a trainable bias
// beside it still gets its gradient.
TEST(ModuleLinear, FrozenWeightGivesDxWithoutInput) {
  const int N = 5, IN = 6, OUT = 4;
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
    for (bool bias_trainable : {false, true}) {
      SCOPED_TRACE(std::string(layout == WeightLayout::out_in ? "out_in" : "in_out") +
                   (bias_trainable ? ", trainable bias" : ", frozen bias"));
      ParameterRegistry reg;
      Linear lin;
      lin.in = IN;
      lin.out = OUT;
      lin.layout = layout;
      lin.weight = add_param(reg, "w", layout == WeightLayout::out_in ? Shape{OUT, IN} : Shape{IN, OUT}, 21, 0.5f);
      lin.bias = add_param(reg, "b", {OUT}, 22, 0.5f);
      if (bias_trainable) reg.set_trainable("b", true);
      reg.allocate_gradients();
      EXPECT_FALSE(lin.needs_input());
      EXPECT_FALSE(lin.weight->grad.defined());
      EXPECT_EQ(lin.weight->g(), nullptr);
      EXPECT_EQ(reg.gradient_buffer().numel(), bias_trainable ? OUT : 0);

      std::vector<float> x = randn(size_t(N) * IN, 23), R = randn(size_t(N) * OUT, 24), y(size_t(N) * OUT);
      auto loss = [&]() {
        lin.forward(y.data(), x.data(), N);
        return dot(y.data(), R);
      };
      auto before = prefill_grads(reg, 30);
      std::vector<float> dx(x.size(), kGarbage);
      lin.backward(dx.data(), R.data(), /*x=*/nullptr, N);
      expect_grad_ok("dx", loss, x.data(), x.size(), dx.data());
      check_params_elementwise(reg, before, loss);
      EXPECT_FALSE(lin.weight->grad.defined());
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// LayerNorm

TEST(ModuleLayerNorm, GradientsTrainableAndFrozen) {
  const int N = 6, C = 8;
  for (bool trainable : {true, false}) {
    SCOPED_TRACE(trainable ? "trainable" : "frozen");
    ParameterRegistry reg;
    LayerNorm ln{add_param(reg, "ln.weight", {C}, 41, 0.2f, 1.0f), add_param(reg, "ln.bias", {C}, 42, 0.2f), C, 1e-5f};
    if (trainable) make_trainable(reg, {"ln.weight", "ln.bias"});
    reg.allocate_gradients();
    std::vector<float> x = randn(size_t(N) * C, 43, 1.5f), R = randn(size_t(N) * C, 44);
    for (size_t i = 0; i < x.size(); ++i) x[i] += float(i / C) - 2.0f;  // a different mean per row
    std::vector<float> out(x.size()), mean(N), rstd(N), out2(x.size());
    ln.forward(out.data(), mean.data(), rstd.data(), x.data(), N);
    // The statistics are optional (inference): same output without them.
    ln.forward(out2.data(), nullptr, nullptr, x.data(), N);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], out2[i]);
    auto loss = [&]() {
      ln.forward(out2.data(), nullptr, nullptr, x.data(), N);
      return dot(out2.data(), R);
    };
    auto before = prefill_grads(reg, 45);
    std::vector<float> dx(x.size(), kGarbage);
    ln.backward(dx.data(), R.data(), x.data(), mean.data(), rstd.data(), N);
    expect_grad_ok("dx", loss, x.data(), x.size(), dx.data(), 2e-2, kFloor);
    check_params_elementwise(reg, before, loss, 2e-2, kFloor);
    if (!trainable) {
      EXPECT_FALSE(ln.weight->grad.defined());
      EXPECT_FALSE(ln.bias->grad.defined());
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// SelfAttention

constexpr int kC = 8, kNH = 2, kF = 16;
constexpr float kDrop = 0.2f;

// BERT style (three out_in Linears) or GPT-2 style (one fused in_out [C, 3C] Linear, causal). Names under
// `prefix`, all registered frozen.
// Rows of the attention test batch are global samples 7 and 3 (as a data-parallel rank might hold them).
const int64_t kSampleIds[] = {7, 3};
const SampleKeys kSamples{kSampleIds, 0};

SelfAttention make_attention(ParameterRegistry& reg, bool fused, const std::string& prefix, unsigned seed) {
  SelfAttention a;
  a.C = kC;
  a.NH = kNH;
  a.fused = fused;
  a.causal = fused;
  a.dropout_p = kDrop;
  a.key_positions = 8;  // dropout counters keyed by sample id (see kSamples), as the models do
  auto linear = [&](const std::string& name, int in, int out, WeightLayout layout) {
    Linear l;
    l.in = in;
    l.out = out;
    l.layout = layout;
    l.weight = add_param(reg, name + ".weight", layout == WeightLayout::out_in ? Shape{out, in} : Shape{in, out},
                         seed++, 0.4f);
    l.bias = add_param(reg, name + ".bias", {out}, seed++, 0.1f);
    return l;
  };
  if (fused) {
    a.qkv = linear(prefix + "c_attn", kC, 3 * kC, WeightLayout::in_out);
    a.out = linear(prefix + "c_proj", kC, kC, WeightLayout::in_out);
  } else {
    a.query = linear(prefix + "self.query", kC, kC, WeightLayout::out_in);
    a.key = linear(prefix + "self.key", kC, kC, WeightLayout::out_in);
    a.value = linear(prefix + "self.value", kC, kC, WeightLayout::out_in);
    a.out = linear(prefix + "output.dense", kC, kC, WeightLayout::out_in);
  }
  return a;
}

struct AttentionCase {
  bool fused;
  bool freeze_out;  // output projection weight frozen: ctx must not be saved
};

class AttentionModule : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionModule, GradientsWithMaskAndDropout) {
  const AttentionCase c = GetParam();
  ParameterRegistry reg;
  const SelfAttention a = make_attention(reg, c.fused, "attn.", 51);
  reg.set_all_trainable(true);
  if (c.freeze_out) reg.set_trainable(a.out.weight->name, false);
  reg.allocate_gradients();
  Batch bt;
  const TokenBatch b = bt.batch();
  const int N = b.rows();
  const uint64_t seed = 77;
  std::vector<float> x = randn(size_t(N) * kC, 61), R = randn(size_t(N) * kC, 62), y(size_t(N) * kC);

  SelfAttention::Buffers saved, scratch;
  a.forward(y.data(), x.data(), saved, scratch, /*save=*/true, b, kDrop, seed, kSamples);
  EXPECT_TRUE(saved.qkv.defined());
  EXPECT_TRUE(saved.probs.defined());
  EXPECT_FALSE(scratch.qkv.defined());
  EXPECT_FALSE(scratch.probs.defined());
  if (c.freeze_out) {
    EXPECT_FALSE(saved.ctx.defined()) << "ctx saved although the output projection is frozen";
    EXPECT_TRUE(scratch.ctx.defined());
  } else {
    EXPECT_TRUE(saved.ctx.defined());
    EXPECT_FALSE(scratch.ctx.defined());
  }

  SelfAttention::Buffers eval_saved, eval_scratch;
  std::vector<float> ye(y.size());
  auto forward_eval = [&](float p) {
    a.forward(ye.data(), x.data(), eval_saved, eval_scratch, /*save=*/false, b, p, seed, kSamples);
    return dot(ye.data(), R);
  };
  auto loss = [&]() { return forward_eval(kDrop); };
  // The unsaved forward computes the same thing, and dropout is really on.
  const double l_drop = loss();
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(ye[i], y[i]);
  EXPECT_FALSE(eval_saved.qkv.defined() || eval_saved.probs.defined() || eval_saved.ctx.defined());
  EXPECT_GT(std::fabs(forward_eval(0.0f) - l_drop), 1e-4);

  std::vector<float> dqkv(size_t(N) * 3 * kC, kGarbage);
  std::vector<float> ws(a.backward_scratch_floats(b), kGarbage);
  auto before = prefill_grads(reg, 70);
  std::vector<float> dx(x.size(), kGarbage);
  a.backward(dx.data(), R.data(), x.data(), saved, b, kDrop, seed, kSamples, dqkv.data(), ws.data(), /*accumulate_dx=*/false);
  expect_grad_ok("dx", loss, x.data(), x.size(), dx.data(), 2e-2, kFloor);
  // The key bias's gradient is exactly zero (a constant added to every score of a row leaves its softmax
  // unchanged), so its finite differences measure only the float forward's rounding: about 5e-5 at eps 1e-2,
  // right at kFloor's 6e-5 allowance. A floor of 5e-3 (1e-4 absolute error) keeps that noise out.
  check_params_elementwise(reg, before, loss, 2e-2, 5e-3);
  if (c.freeze_out) {
    EXPECT_FALSE(a.out.weight->grad.defined());
  }

  // accumulate_dx adds onto what dx held.
  std::vector<float> prior = randn(x.size(), 71), acc = prior;
  a.backward(acc.data(), R.data(), x.data(), saved, b, kDrop, seed, kSamples, dqkv.data(), ws.data(), /*accumulate_dx=*/true);
  for (size_t i = 0; i < acc.size(); ++i) ASSERT_NEAR(acc[i] - prior[i], dx[i], 1e-4) << "accumulated dx[" << i << "]";
}

INSTANTIATE_TEST_SUITE_P(Module, AttentionModule,
                         ::testing::Values(AttentionCase{false, false}, AttentionCase{true, false},
                                           AttentionCase{false, true}, AttentionCase{true, true}),
                         [](const ::testing::TestParamInfo<AttentionCase>& i) {
                           return std::string(i.param.fused ? "FusedCausal" : "Unfused") +
                                  (i.param.freeze_out ? "FrozenOut" : "");
                         });

// ---------------------------------------------------------------------------------------------------------
// BertLayer and Gpt2Block, built by hand

LayerNorm make_ln(ParameterRegistry& reg, const std::string& name, unsigned seed, float eps) {
  return LayerNorm{add_param(reg, name + ".weight", {kC}, seed, 0.1f, 1.0f), add_param(reg, name + ".bias", {kC}, seed + 1, 0.1f),
                   kC, eps};
}

Linear make_linear(ParameterRegistry& reg, const std::string& name, int in, int out, WeightLayout layout,
                   unsigned seed) {
  Linear l;
  l.in = in;
  l.out = out;
  l.layout = layout;
  l.weight = add_param(reg, name + ".weight", layout == WeightLayout::out_in ? Shape{out, in} : Shape{in, out}, seed,
                       0.3f);
  l.bias = add_param(reg, name + ".bias", {out}, seed + 1, 0.1f);
  return l;
}

BertLayer make_bert_layer(ParameterRegistry& reg) {
  BertLayer l;
  l.attn = make_attention(reg, /*fused=*/false, "attention.", 101);
  l.ln1 = make_ln(reg, "attention.output.LayerNorm", 111, 1e-12f);
  l.ffn_in = make_linear(reg, "intermediate.dense", kC, kF, WeightLayout::out_in, 113);
  l.ffn_out = make_linear(reg, "output.dense", kF, kC, WeightLayout::out_in, 115);
  l.ln2 = make_ln(reg, "output.LayerNorm", 117, 1e-12f);
  l.gelu = GeluKind::erf;
  l.hidden_dropout = kDrop;
  l.layer_index = 1;
  l.max_positions = 16;
  return l;
}

Gpt2Block make_gpt2_block(ParameterRegistry& reg) {
  Gpt2Block blk;
  blk.ln1 = make_ln(reg, "ln_1", 201, 1e-5f);
  blk.attn = make_attention(reg, /*fused=*/true, "attn.", 203);
  blk.ln2 = make_ln(reg, "ln_2", 211, 1e-5f);
  blk.fc = make_linear(reg, "mlp.c_fc", kC, kF, WeightLayout::in_out, 213);
  blk.proj = make_linear(reg, "mlp.c_proj", kF, kC, WeightLayout::in_out, 215);
  blk.gelu = GeluKind::tanh;
  blk.resid_dropout = kDrop;
  blk.layer_index = 2;
  blk.max_positions = 16;
  return blk;
}

// Which parameters train: everything, nothing, or everything but the Linear weights (biases, LayerNorms).
enum class Train { all, none, no_linear_weights };

void set_training(ParameterRegistry& reg, Train t) {
  for (auto& p : reg.all()) {
    const bool is_linear_weight = p->name.find("LayerNorm") == std::string::npos &&
                                  p->name.rfind("ln_", 0) != 0 && p->name.size() > 7 &&
                                  p->name.compare(p->name.size() - 7, 7, ".weight") == 0;
    reg.set_trainable(p->name, t == Train::all || (t == Train::no_linear_weights && !is_linear_weight));
  }
  reg.allocate_gradients();
}

const char* train_name(Train t) {
  return t == Train::all ? "AllTrainable" : t == Train::none ? "AllFrozen" : "LinearWeightsFrozen";
}

// Shared driver: forward with save, backward into a garbage-filled dx, then directional checks of dx and
// every trainable parameter against an unsaved forward with the same dropout stream.
template <class Block>
void check_block(const Block& blk, ParameterRegistry& reg, typename Block::Buffers& saved, int F, unsigned seed) {
  Batch bt;
  const TokenBatch b = bt.batch();
  const int N = b.rows();
  StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = 4242;
  std::vector<float> x = randn(size_t(N) * kC, seed), R = randn(size_t(N) * kC, seed + 1), out(x.size());
  typename Block::Buffers scratch;
  blk.forward(out.data(), x.data(), saved, scratch, /*save=*/true, b, opt);

  typename Block::Buffers eval_saved, eval_scratch;
  std::vector<float> oe(out.size());
  auto run = [&](const StepOptions& o) {
    blk.forward(oe.data(), x.data(), eval_saved, eval_scratch, /*save=*/false, b, o);
    return dot(oe.data(), R);
  };
  auto loss = [&]() { return run(opt); };
  const double l = loss();
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(oe[i], out[i]) << "unsaved forward differs at " << i;
  StepOptions no_drop = opt;
  no_drop.training = false;
  EXPECT_GT(std::fabs(run(no_drop) - l), 1e-3) << "dropout had no effect";

  BackwardWorkspace ws;
  ws.ensure(b, kC, F, kNH);
  for (Tensor* t : {&ws.d_a, &ws.d_b, &ws.d_ffn, &ws.d_qkv, &ws.scratch}) {
    float* p = t->data<float>();
    std::fill(p, p + t->numel(), kGarbage);
  }
  auto before = prefill_grads(reg, seed + 10);
  std::vector<float> dx(x.size(), kGarbage);
  blk.backward(dx.data(), R.data(), x.data(), saved, b, opt, ws);
  // dx on its own element by element (a small tensor), then along a direction like the parameters.
  expect_grad_ok("dx", loss, x.data(), x.size(), dx.data(), 3e-2, 2e-3);
  expect_directional_grad_ok("dx", loss, x.data(), x.size(), dx.data(), 1e-2, 5e-3, 3e-3);
  check_params_directional(reg, before, loss);
  for (auto& p : reg.all()) {
    if (!p->trainable) {
      EXPECT_FALSE(p->grad.defined()) << p->name;
    }
  }
}

class BertLayerModule : public ::testing::TestWithParam<Train> {};

TEST_P(BertLayerModule, GradientsAndSavedActivations) {
  ParameterRegistry reg;
  const BertLayer l = make_bert_layer(reg);
  set_training(reg, GetParam());
  BertLayer::Buffers saved;
  check_block(l, reg, saved, kF, 301);
  // Forward keeps what backward reads; inputs of frozen Linears only when those Linears train.
  const bool linears_train = GetParam() == Train::all;
  for (auto [name, t] : {std::pair<const char*, Tensor*>{"h1_pre", &saved.h1_pre}, {"ln1_mean", &saved.ln1_mean},
                         {"ln1_rstd", &saved.ln1_rstd}, {"ffn_pre", &saved.ffn_pre}, {"h2_pre", &saved.h2_pre},
                         {"ln2_mean", &saved.ln2_mean}, {"ln2_rstd", &saved.ln2_rstd},
                         {"attn.qkv", &saved.attn.qkv}, {"attn.probs", &saved.attn.probs}})
    EXPECT_TRUE(t->defined()) << name << " not saved";
  for (auto [name, t] : {std::pair<const char*, Tensor*>{"h1", &saved.h1}, {"ffn_act", &saved.ffn_act},
                         {"attn.ctx", &saved.attn.ctx}})
    EXPECT_EQ(t->defined(), linears_train) << name << (linears_train ? " not saved" : " saved for a frozen Linear");
}

INSTANTIATE_TEST_SUITE_P(Module, BertLayerModule,
                         ::testing::Values(Train::all, Train::none, Train::no_linear_weights),
                         [](const ::testing::TestParamInfo<Train>& i) { return std::string(train_name(i.param)); });

class Gpt2BlockModule : public ::testing::TestWithParam<Train> {};

TEST_P(Gpt2BlockModule, GradientsAndSavedActivations) {
  ParameterRegistry reg;
  const Gpt2Block blk = make_gpt2_block(reg);
  set_training(reg, GetParam());
  Gpt2Block::Buffers saved;
  check_block(blk, reg, saved, kF, 401);
  const bool linears_train = GetParam() == Train::all;
  for (auto [name, t] : {std::pair<const char*, Tensor*>{"ln1_mean", &saved.ln1_mean}, {"ln1_rstd", &saved.ln1_rstd},
                         {"a", &saved.a}, {"ln2_mean", &saved.ln2_mean}, {"ln2_rstd", &saved.ln2_rstd},
                         {"fc_pre", &saved.fc_pre}, {"attn.qkv", &saved.attn.qkv}, {"attn.probs", &saved.attn.probs}})
    EXPECT_TRUE(t->defined()) << name << " not saved";
  for (auto [name, t] : {std::pair<const char*, Tensor*>{"ln1_out", &saved.ln1_out}, {"ln2_out", &saved.ln2_out},
                         {"fc_act", &saved.fc_act}, {"attn.ctx", &saved.attn.ctx}})
    EXPECT_EQ(t->defined(), linears_train) << name << (linears_train ? " not saved" : " saved for a frozen Linear");
}

INSTANTIATE_TEST_SUITE_P(Module, Gpt2BlockModule,
                         ::testing::Values(Train::all, Train::none, Train::no_linear_weights),
                         [](const ::testing::TestParamInfo<Train>& i) { return std::string(train_name(i.param)); });

}  // namespace
