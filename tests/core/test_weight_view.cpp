// Weight views (core/modules/weight_view.h): a frozen Linear weight held in 16 bits multiplies exactly as the
// f32 weight holding the same (rounded) values, up to the order of a GEMM's sums; its memory is half; a
// Linear over it has the right input gradient; a whole backbone runs on it; a trainable weight cannot be
// held that way.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/modules/linear.h"
#include "core/modules/parameter.h"
#include "core/modules/weight_view.h"
#include "core/tensor/memory.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_batch.h"

using namespace ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

namespace {

std::vector<float> rounded(const std::vector<float>& v, DType dt) {
  std::vector<uint16_t> h(v.size());
  std::vector<float> out(v.size());
  convert_from_f32(dt, v.data(), h.data(), v.size());
  convert_to_f32(dt, h.data(), out.data(), v.size());
  return out;
}

// Products y[n, j] = sum_k a[n, k] b(k, j) in double, and the float GEMM error bound 2 K 2^-24 sum |a b| of
// each: any summation order of float products lies within it, so it tells reordering from a wrong value.
struct Reference {
  std::vector<double> y, bound;
};
Reference reference(int N, int K, int J, const std::vector<float>& a, const std::function<float(int, int)>& b) {
  Reference r{std::vector<double>(size_t(N) * J), std::vector<double>(size_t(N) * J)};
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < J; ++j) {
      double s = 0, m = 0;
      for (int k = 0; k < K; ++k) {
        const double p = double(a[size_t(n) * K + k]) * b(k, j);
        s += p;
        m += std::fabs(p);
      }
      r.y[size_t(n) * J + j] = s;
      r.bound[size_t(n) * J + j] = 2.0 * K * std::ldexp(1.0, -24) * m + 1e-30;
    }
  return r;
}

void expect_within(const std::string& what, const std::vector<float>& got, const Reference& ref) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::fabs(double(got[i]) - ref.y[i]) > ref.bound[i] && bad++ < 3)
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", exact " << ref.y[i] << ", bound " << ref.bound[i];
  EXPECT_EQ(bad, 0u) << what;
}

}  // namespace

// Shapes larger than one tile (kWeightTileValues), in both layouts and both 16-bit types: forward and the
// input gradient equal the exact products of the rounded weight within float rounding, with beta 0 and 1.
TEST(WeightView, SixteenBitTilesGiveTheProductsOfTheRoundedWeight) {
  const int N = 5, IN = 1100, OUT = 1000;  // 1.1M values: two tiles either way
  static_assert(size_t(IN) * OUT > kWeightTileValues);
  for (DType dt : {DType::bf16, DType::f16})
    for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (layout == WeightLayout::out_in ? " out_in" : " in_out"));
      const bool t = layout == WeightLayout::out_in;
      const Shape shape = t ? Shape{OUT, IN} : Shape{IN, OUT};
      const std::vector<float> w = randn(size_t(IN) * OUT, 3, 0.05f), wr = rounded(w, dt);
      ParameterRegistry reg;
      Parameter& p = reg.add("w", Tensor::from_floats(w, shape, MemCategory::frozen_weights));
      ASSERT_EQ(reg.store_frozen_as(dt, [](const Parameter&) { return true; }), 1u);
      ASSERT_EQ(p.value.dtype(), dt);
      const WeightView view(p, IN, OUT, layout);
      auto W = [&](int i, int o) { return wr[t ? size_t(o) * IN + i : size_t(i) * OUT + o]; };

      const std::vector<float> x = randn(size_t(N) * IN, 4), y0 = randn(size_t(N) * OUT, 5);
      const std::vector<float> dy = randn(size_t(N) * OUT, 6), dx0 = randn(size_t(N) * IN, 7);
      for (float beta : {0.0f, 1.0f}) {  // 0: the output is overwritten; 1: the product is added to it
        SCOPED_TRACE(beta);
        std::vector<float> y = y0;
        view.forward(N, x.data(), IN, beta, y.data(), OUT);
        Reference fy = reference(N, IN, OUT, x, W);
        for (size_t i = 0; i < fy.y.size(); ++i) fy.y[i] += beta * y0[i], fy.bound[i] += std::ldexp(std::fabs(y0[i]), -23);
        expect_within("forward", y, fy);

        std::vector<float> dx = dx0;
        view.backward_input(N, dy.data(), OUT, beta, dx.data(), IN);
        Reference bx = reference(N, OUT, IN, dy, [&](int o, int i) { return W(i, o); });
        for (size_t i = 0; i < bx.y.size(); ++i) bx.y[i] += beta * dx0[i], bx.bound[i] += std::ldexp(std::fabs(dx0[i]), -23);
        expect_within("backward_input", dx, bx);
      }
    }
}

// Holding a weight in 16 bits halves what the memory table counts for it, and leaves trainable parameters,
// and those the filter rejects, as they were.
TEST(WeightView, StoringFrozenWeightsIn16BitsHalvesTheirMemory) {
  auto& mt = MemoryTracker::instance();
  ParameterRegistry reg;
  reg.add("frozen", Tensor::from_floats(randn(4096, 1), {64, 64}, MemCategory::frozen_weights));
  reg.add("kept", Tensor::from_floats(randn(4096, 2), {64, 64}, MemCategory::frozen_weights));
  reg.add("trained", Tensor::from_floats(randn(4096, 3), {64, 64}, MemCategory::frozen_weights));
  reg.set_trainable("trained", true);
  const size_t before = mt.current(0, MemCategory::frozen_weights);
  EXPECT_EQ(reg.store_frozen_as(DType::bf16, [](const Parameter& p) { return p.name != "kept"; }), 1u);
  EXPECT_EQ(before - mt.current(0, MemCategory::frozen_weights), 4096u * 2);
  EXPECT_EQ(reg.at("frozen").value.dtype(), DType::bf16);
  EXPECT_EQ(reg.at("kept").value.dtype(), DType::f32);
  EXPECT_EQ(reg.at("trained").value.dtype(), DType::f32);
  EXPECT_THROW(reg.store_frozen_as(DType::i8, [](const Parameter&) { return true; }), std::invalid_argument);
}

// A Linear over a bf16 weight: the input gradient matches finite differences of its own forward, with and
// without a bias; a trainable weight held in 16 bits is refused, naming it.
TEST(WeightView, LinearOverABf16WeightHasTheRightInputGradient) {
  const int N = 4, IN = 40, OUT = 24;
  for (WeightLayout layout : {WeightLayout::out_in, WeightLayout::in_out}) {
    ParameterRegistry reg;
    Linear lin;
    lin.in = IN;
    lin.out = OUT;
    lin.layout = layout;
    lin.weight = &reg.add("w", Tensor::from_floats(randn(size_t(IN) * OUT, 7, 0.3f),
                                                   layout == WeightLayout::out_in ? Shape{OUT, IN} : Shape{IN, OUT},
                                                   MemCategory::frozen_weights));
    lin.bias = &reg.add("b", Tensor::from_floats(randn(size_t(OUT), 8), {OUT}, MemCategory::frozen_weights));
    reg.store_frozen_as(DType::bf16, [&](const Parameter& p) { return &p == lin.weight; });
    reg.allocate_gradients();
    std::vector<float> x = randn(size_t(N) * IN, 9), R = randn(size_t(N) * OUT, 10), y(size_t(N) * OUT), dx(x.size());
    auto loss = [&] {
      lin.forward(y.data(), x.data(), N);
      return ladder::test::dot(y.data(), R);
    };
    lin.backward(dx.data(), R.data(), nullptr, N);
    expect_grad_ok("dx", loss, x.data(), x.size(), dx.data());
  }
  ParameterRegistry reg;
  Parameter& p = reg.add("encoder.w", Tensor::from_floats(randn(64, 1), {8, 8}, MemCategory::frozen_weights));
  reg.store_frozen_as(DType::bf16, [](const Parameter&) { return true; });
  p.trainable = true;  // as if set behind the registry's back
  try {
    WeightView v(p, 8, 8, WeightLayout::out_in);
    ADD_FAILURE() << "a trainable bf16 weight was accepted";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.w"), std::string::npos) << e.what();
  }
}

// A whole backbone whose frozen Linear weights are held in bf16 computes what the same backbone computes
// with f32 weights rounded to bf16 values (the same numbers, so only GEMM sum order may differ), for BERT
// and GPT-2.
TEST(WeightView, BackboneOnBf16LinearsEqualsF32OfTheRoundedWeights) {
  for (bool gpt : {false, true}) {
    SCOPED_TRACE(gpt ? "gpt2" : "bert");
    auto a = ladder::test::tiny_backbone(gpt, gpt ? "wv_gpt_a" : "wv_bert_a", 11);
    auto b = ladder::test::tiny_backbone(gpt, gpt ? "wv_gpt_b" : "wv_bert_b", 11);
    for (auto& [name, lin] : a->linear_modules()) {
      auto v = rounded(lin->weight->value.to_floats(), DType::bf16);
      lin->weight->value = Tensor::from_floats(v, lin->weight->value.shape(), MemCategory::frozen_weights);
    }
    size_t n = 0;
    for (auto& [name, lin] : b->linear_modules()) {
      Parameter* w = lin->weight;
      n += b->params().store_frozen_as(DType::bf16, [w](const Parameter& p) { return &p == w; });
    }
    EXPECT_EQ(n, b->linear_modules().size());
    ladder::test::TinyBatch batch(50);
    StepOptions opt;
    a->forward(batch.view(), opt);
    b->forward(batch.view(), opt);
    const auto ya = a->last_hidden().to_floats(), yb = b->last_hidden().to_floats();
    ASSERT_EQ(ya.size(), yb.size());
    for (size_t i = 0; i < ya.size(); ++i) ASSERT_NEAR(ya[i], yb[i], 1e-5 * (1 + std::fabs(ya[i]))) << i;
  }
}
