// KronA: the factored forward against the materialised s (A (x) B) (strided rows too), exact gradients,
// gradients through whole tiny BERT / GPT-2 models with dropout for krona / krona_b / krona_b_res, the
// zero init, merge / unmerge in both weight layouts, errors, counts and seam conflicts.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapters/adapter_methods.h"
#include "adapters/method_registry.h"
#include "adapters/krona.h"
#include "adapters/lora.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"
#include "tests/support/gradcheck.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

using namespace ladder::core;
using namespace ladder::adapters;

using ladder::test::TinyBatch;
using ladder::test::dot;
using ladder::test::fill_randn;
using ladder::test::tiny_backbone;

using ladder::test::check_model_gradients;

namespace {
constexpr uint64_t kDropoutSeed = 79;  // this file's whole-model gradient checks
}  // namespace

namespace {

MethodConfig small_options() {
  MethodConfig o;
  o.set("krona_a1", 4);
  o.set("krona_a2", 2);
  o.set("krona_scale", 2.0f);
  return o;
}

// A = 0 at init (B's gradient would be 0): give every krona_A (and s_res) a value first.
void wake(Backbone& m) {
  unsigned s = 20;
  for (auto& p : m.params().all()) {
    if (p->name.find("krona_A") != std::string::npos) fill_randn(*p, s++, 0.3f);
    if (p->name.find("krona_res_scale") != std::string::npos) p->w()[0] = 0.25f;
  }
}

}  // namespace

// x (A (x) B) via the two small GEMMs equals the product with the materialised [in, out] matrix, for
// contiguous and strided rows, with and without the residual.
TEST(Krona, FactoredForwardEqualsTheMaterialisedKroneckerProduct) {
  for (bool residual : {false, true}) {
    ParameterRegistry reg;
    const int in = 6, out = 6, a1 = 3, a2 = 2, N = 4, ldx = 9, ldy = 8;
    KronaBranch k(reg, "blk", in, out, a1, a2, 1.5f, residual, 1);
    EXPECT_EQ(k.A().value.dim(0), a1);
    EXPECT_EQ(k.B().value.dim(0), in / a1);
    EXPECT_EQ(k.B().value.dim(1), out / a2);
    fill_randn(k.A(), 2, 1.0f);
    if (residual) k.res_scale()->w()[0] = 0.7f;
    auto x = ladder::test::randn(size_t(N) * ldx, 3);
    std::vector<float> y(size_t(N) * ldy, 0.5f);
    StepOptions so;
    k.forward_add(y.data(), x.data(), N, ldy, ldx, {&so, false, nullptr, 0});
    const auto K = k.materialize();
    for (int r = 0; r < N; ++r) {
      for (int o = 0; o < out; ++o) {
        double ref = 0.5 + (residual ? 0.7 * x[size_t(r) * ldx + o] : 0.0);
        for (int i = 0; i < in; ++i) ref += double(x[size_t(r) * ldx + i]) * K[size_t(i) * out + o];
        EXPECT_NEAR(y[size_t(r) * ldy + o], ref, 1e-5) << r << "," << o;
      }
      for (int o = out; o < ldy; ++o) EXPECT_EQ(y[size_t(r) * ldy + o], 0.5f) << "wrote past the row";
    }
    EXPECT_EQ(k.num_params(), size_t(a1 * a2 + 2 * 3) + (residual ? 1 : 0));
  }
}

TEST(Krona, GradientsOfFactorsResidualAndInputAreExact) {
  struct Case { int in, out, a1, a2; bool residual; int pad; };
  for (const Case c : {Case{8, 8, 2, 4, true, 0}, Case{8, 6, 2, 3, false, 0}, Case{8, 8, 4, 2, true, 3},
                       Case{6, 9, 3, 3, false, 2}}) {
    ParameterRegistry reg;
    const int N = 3, ldx = c.in + c.pad, ldy = c.out + c.pad;
    KronaBranch k(reg, "blk", c.in, c.out, c.a1, c.a2, 0.8f, c.residual, 1);
    fill_randn(k.A(), 2, 1.0f);
    if (c.residual) k.res_scale()->w()[0] = 0.4f;
    reg.allocate_gradients();
    auto x = ladder::test::randn(size_t(N) * ldx, 5);
    auto r = ladder::test::randn(size_t(N) * ldy, 6);
    std::vector<float> dx(x.size(), 0.0f);
    k.backward(dx.data(), r.data(), x.data(), N, ldx, ldy);
    auto loss = [&]() {
      std::vector<float> y(size_t(N) * ldy, 0.0f);
      k.forward_add(y.data(), x.data(), N, ldy, ldx, {});
      return dot(y.data(), r);
    };
    const std::string tag = " case " + std::to_string(c.in) + "x" + std::to_string(c.out) + " pad " + std::to_string(c.pad);
    for (int n = 0; n < N; ++n)  // the row padding of x gets no gradient: zero it for the check
      for (int j = c.in; j < ldx; ++j) {
        EXPECT_EQ(dx[size_t(n) * ldx + j], 0.0f) << "wrote into the row padding" << tag;
        x[size_t(n) * ldx + j] = 0.0f;
      }
    ladder::test::expect_grad_ok("krona dx" + tag, loss, x.data(), x.size(), dx.data(), 1e-2, 1e-4, 1e-2);
    for (auto* p : reg.trainable()) {
      auto g = p->grad.to_floats();
      ladder::test::expect_grad_ok(p->name + tag, loss, p->w(), size_t(p->value.numel()), g.data(), 1e-2, 1e-4, 1e-2);
    }
  }
}

TEST(Krona, GradientsThroughFrozenBertWithDropout) {
  for (const char* name : {"krona", "krona_b", "krona_b_res"}) {
    auto m = tiny_backbone(false, std::string("krona_grad_") + name, 61);
    auto method = make_method(name, *m, small_options());
    wake(*m);
    const size_t expect = std::string(name) == "krona" ? 2u * 2u * 2u : std::string(name) == "krona_b" ? 4u : 6u;
    EXPECT_EQ(check_model_gradients(*m, 3, kDropoutSeed), expect) << name;
  }
}

TEST(Krona, GradientsThroughFrozenGpt2WithDropout) {
  for (const char* name : {"krona", "krona_b_res"}) {
    auto m = tiny_backbone(true, std::string("krona_gpt2_") + name, 62);
    auto o = small_options();
    o.set("krona_targets", std::vector<std::string>{"qkv", "ffn_out"});
    auto method = make_method(name, *m, o);
    wake(*m);
    EXPECT_EQ(check_model_gradients(*m, 4, kDropoutSeed), std::string(name) == "krona" ? 2u * 2u * 2u : 6u) << name;
  }
}

TEST(Krona, ZeroInitLeavesTheBackboneUnchanged) {
  for (bool gpt : {false, true})
    for (const char* name : {"krona", "krona_b", "krona_b_res"}) {
      auto m = tiny_backbone(gpt, std::string("krona_zero_") + name, 63);
      TinyBatch in(m->config().vocab_size);
      m->forward(in.view(), {});
      auto base = m->last_hidden().to_floats();
      auto o = small_options();
      if (gpt) o.set("krona_targets", std::vector<std::string>{"qkv"});
      auto method = make_method(name, *m, o);
      double bnorm = 0;
      for (auto& p : m->params().all())
        if (p->name.find("krona_B") != std::string::npos)
          for (float v : p->value.to_floats()) bnorm += std::fabs(v);
      EXPECT_GT(bnorm, 0.0) << "B must be random (only A starts at zero)";
      m->forward(in.view(), {});
      auto h = m->last_hidden().to_floats();
      for (size_t i = 0; i < base.size(); ++i) ASSERT_EQ(h[i], base[i]) << name << (gpt ? " gpt2" : " bert");
    }
}

TEST(Krona, MergeGivesTheSameOutputAndUnmergeRestoresTheWeight) {
  for (bool gpt : {false, true}) {  // BERT weights are [out, in], GPT-2 Conv1D weights [in, out]
    auto m = tiny_backbone(gpt, gpt ? "krona_merge_g" : "krona_merge_b", 64);
    auto o = small_options();
    o.set("krona_targets", gpt ? std::vector<std::string>{"qkv", "ffn_in"} : std::vector<std::string>{"query", "value", "ffn_in"});
    auto method = make_method("krona", *m, o);
    ASSERT_TRUE(method->mergeable());
    wake(*m);
    const std::string wname = gpt ? "h.0.mlp.c_fc.weight" : "encoder.layer.0.intermediate.dense.weight";
    auto w0 = m->params().at(wname).value.to_floats();
    TinyBatch in(m->config().vocab_size);
    m->forward(in.view(), {});
    auto before = m->last_hidden().to_floats();
    method->merge();
    m->forward(in.view(), {});
    auto merged = m->last_hidden().to_floats();
    for (size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(before[i], merged[i], 2e-5) << (gpt ? "gpt2" : "bert");
    auto wm = m->params().at(wname).value.to_floats();
    double diff = 0;
    for (size_t i = 0; i < w0.size(); ++i) diff += std::fabs(wm[i] - w0[i]);
    EXPECT_GT(diff, 1e-3) << "merge changed nothing";
    method->unmerge();
    auto wu = m->params().at(wname).value.to_floats();
    for (size_t i = 0; i < w0.size(); ++i) ASSERT_NEAR(wu[i], w0[i], 1e-6);
    m->forward(in.view(), {});
    auto after = m->last_hidden().to_floats();
    for (size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(before[i], after[i], 2e-5);
  }
}

TEST(Krona, IndivisibleShapesAndTakenSeamsAreNamedErrors) {
  auto m = tiny_backbone(false, "krona_bad", 65);
  auto o = small_options();
  o.set("krona_a1", 5);
  try {
    make_method("krona", *m, o);
    ADD_FAILURE() << "a1 = 5 does not divide 16";
  } catch (const std::invalid_argument& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("encoder.layer.0.attention.self.query"), std::string::npos) << w;
    EXPECT_NE(w.find("16 -> 16"), std::string::npos) << w;
    EXPECT_NE(w.find("krona_a1 = 5"), std::string::npos) << w;
  }
  EXPECT_THROW(make_method("krona_b", *m, o), std::invalid_argument);
  EXPECT_TRUE(m->params().trainable().empty()) << "a refused method registered parameters";
  // krona_b and krona_b_res both use ffn_parallel
  auto kb = make_method("krona_b", *m, small_options());
  try {
    make_method("krona_b_res", *m, small_options());
    ADD_FAILURE() << "krona_b + krona_b_res must conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.0 ffn_parallel"), std::string::npos) << e.what();
  }
  // LoRA and KronA on the same Linear
  auto mods = m->linear_modules();
  LoraBranch lora(m->params(), mods[0].first, *mods[0].second, {4, 8.0f, 0.0f}, 1);
  try {
    make_method("krona", *m, small_options());
    ADD_FAILURE() << "lora + krona on query must conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(mods[0].first), std::string::npos) << e.what();
  }
  // seams that differ compose: krona on key only
  auto o2 = small_options();
  o2.set("krona_targets", std::vector<std::string>{"key"});
  EXPECT_NO_THROW(make_method("krona", *m, o2));
}

// Counted by hand. Tiny BERT (d 16, a1 4, a2 2 -> B [4, 8]): 8 + 32 = 40 per module; krona on query/value of
// 2 layers = 160, krona_b = 80, krona_b_res = 82. BERT-base shapes (a1 = a2 = 16): query 768 -> 768 is
// 256 + 48*48 = 2,560, so query/value in 12 layers = 61,440 (0.056% of 109,482,240); GPT-2's c_attn
// 768 -> 2304 is 256 + 48*144 = 7,168.
TEST(Krona, ParameterCountsMatchTheFormulas) {
  for (const char* name : {"krona", "krona_b", "krona_b_res"}) {
    auto m = tiny_backbone(false, std::string("krona_count_") + name, 66);
    auto method = make_method(name, *m, small_options());
    const size_t expect = std::string(name) == "krona" ? 160u : std::string(name) == "krona_b" ? 80u : 82u;
    EXPECT_EQ(m->params().count(true), expect) << name;
  }
  ParameterRegistry reg;
  KronaBranch q(reg, "encoder.layer.0.attention.self.query", 768, 768, 16, 16, 1.0f, false, 1);
  EXPECT_EQ(q.num_params(), 2560u);
  EXPECT_EQ(24u * q.num_params(), 61440u);
  KronaBranch c(reg, "h.0.attn.c_attn", 768, 2304, 16, 16, 1.0f, false, 1);
  EXPECT_EQ(c.num_params(), 7168u);
  EXPECT_EQ(reg.count(true), 2560u + 7168u);
}
