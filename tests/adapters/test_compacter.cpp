// PHM layer and Compacter: the factored forward against the materialised H, exact gradients of the rule
// and the rank-one factors, the shared rule (one registration, gradient = sum of the per-layer
// contributions), gradients through whole tiny BERT / GPT-2 models with dropout, and the parameter counts
// of METHODS.md §3.2.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapters/adapter_methods.h"
#include "adapters/method_registry.h"
#include "adapters/phm.h"
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
constexpr uint64_t kDropoutSeed = 78;  // this file's whole-model gradient checks
}  // namespace

namespace {

MethodConfig small_options() {
  MethodConfig o;
  o.set("adapter_reduction", 4);  // d = 16 -> m = 4
  o.set("compacter_n", 2);        // in/n, out/n = 8, 2
  o.set("adapter_activation", std::string("gelu_new"));
  return o;
}

}  // namespace

TEST(Phm, FactoredForwardEqualsTheMaterialisedKroneckerSum) {
  ParameterRegistry reg;
  const int n = 3, in = 9, out = 6, N = 4;
  auto& rule = add_phm_rule(reg, n, 1);
  fill_randn(rule, 2, 0.7f);
  PhmLinear phm(reg, "l", in, out, n, rule, 3);
  fill_randn(phm.bias(), 4, 0.3f);
  auto x = ladder::test::randn(size_t(N) * in, 5);
  std::vector<float> y(size_t(N) * out, 0.0f);
  phm.forward(y.data(), x.data(), N, false, false);
  const auto H = phm.materialize();  // [in, out]
  for (int r = 0; r < N; ++r)
    for (int o = 0; o < out; ++o) {
      double ref = phm.bias().w()[o];
      for (int i = 0; i < in; ++i) ref += double(x[size_t(r) * in + i]) * H[size_t(i) * out + o];
      EXPECT_NEAR(y[size_t(r) * out + o], ref, 1e-5) << r << "," << o;
    }
  // accumulate adds x H + b on top
  std::vector<float> y2(y.size(), 1.0f);
  phm.forward(y2.data(), x.data(), N, false, true);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y2[i], y[i] + 1.0f, 1e-5);
  EXPECT_EQ(phm.num_params(), size_t(in + out + out));
  EXPECT_THROW(PhmLinear(reg, "bad", 10, 6, n, rule, 3), std::invalid_argument);
}

TEST(Phm, GradientsOfRuleFactorsBiasAndInputAreExact) {
  ParameterRegistry reg;
  const int n = 2, in = 6, out = 4, N = 3;
  auto& rule = add_phm_rule(reg, n, 1);
  fill_randn(rule, 2, 0.8f);
  PhmLinear phm(reg, "l", in, out, n, rule, 3);
  fill_randn(phm.bias(), 4, 0.3f);
  reg.allocate_gradients();
  auto x = ladder::test::randn(size_t(N) * in, 5);
  auto r = ladder::test::randn(size_t(N) * out, 6);
  std::vector<float> y(size_t(N) * out);
  phm.forward(y.data(), x.data(), N, true, false);
  std::vector<float> dx(x.size(), 0.0f);
  phm.backward(dx.data(), r.data(), x.data(), N);
  auto loss = [&]() {
    std::vector<float> yy(size_t(N) * out);
    phm.forward(yy.data(), x.data(), N, false, false);
    return dot(yy.data(), r);
  };
  ladder::test::expect_grad_ok("phm dx", loss, x.data(), x.size(), dx.data(), 1e-2, 1e-4, 1e-2);
  for (auto* p : reg.trainable()) {
    auto g = p->grad.to_floats();
    ladder::test::expect_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), g.data(), 1e-2, 1e-4, 1e-2);
  }
}

// Two PHM layers in sequence sharing one rule: the shared gradient equals the finite difference and the
// sum of what each layer contributes (measured with an unshared copy of the rule per layer).
TEST(Phm, SharedRuleGradientIsTheSumOfPerLayerContributions) {
  const int n = 2, d = 6, m = 4, N = 3;
  auto x = ladder::test::randn(size_t(N) * d, 5);
  auto r = ladder::test::randn(size_t(N) * d, 6);
  auto run = [&](bool shared, std::vector<float>* g_total, std::vector<float>* g1, std::vector<float>* g2) {
    ParameterRegistry reg;
    auto& rule1 = add_phm_rule(reg, n, 1);
    fill_randn(rule1, 2, 0.8f);
    Parameter* rule2 = &rule1;
    if (!shared) {
      rule2 = &reg.add("phm_rule_2", Tensor::from_floats(rule1.value.to_floats(), {n, n, n}, MemCategory::trainable_weights));
      rule2->trainable = true;
    }
    PhmLinear l1(reg, "l1", d, m, n, rule1, 3), l2(reg, "l2", m, d, n, *rule2, 3);
    reg.allocate_gradients();
    std::vector<float> h(size_t(N) * m), y(size_t(N) * d), dh(size_t(N) * m, 0.0f);
    l1.forward(h.data(), x.data(), N, true, false);
    l2.forward(y.data(), h.data(), N, true, false);
    l2.backward(dh.data(), r.data(), h.data(), N);
    l1.backward(nullptr, dh.data(), x.data(), N);
    if (shared) {
      *g_total = rule1.grad.to_floats();
      auto loss = [&]() {
        std::vector<float> hh(size_t(N) * m), yy(size_t(N) * d);
        l1.forward(hh.data(), x.data(), N, false, false);
        l2.forward(yy.data(), hh.data(), N, false, false);
        return dot(yy.data(), r);
      };
      ladder::test::expect_grad_ok("shared phm_rule", loss, rule1.w(), size_t(n * n * n), g_total->data(), 1e-2, 1e-4, 1e-2);
      int registered = 0;
      for (auto& p : reg.all()) registered += p->name == "phm_rule";
      EXPECT_EQ(registered, 1);
    } else {
      *g1 = rule1.grad.to_floats();
      *g2 = rule2->grad.to_floats();
    }
  };
  std::vector<float> total, g1, g2;
  run(true, &total, nullptr, nullptr);
  run(false, nullptr, &g1, &g2);
  double n1 = 0, n2 = 0;
  for (size_t i = 0; i < total.size(); ++i) {
    EXPECT_NEAR(total[i], g1[i] + g2[i], 1e-4 * (1 + std::fabs(total[i])));
    n1 += std::fabs(g1[i]);
    n2 += std::fabs(g2[i]);
  }
  EXPECT_GT(n1, 1e-3);
  EXPECT_GT(n2, 1e-3);
}

TEST(Compacter, GradientsThroughFrozenBertWithDropout) {
  auto m = tiny_backbone(false, "compacter_grad", 51);
  auto method = make_method("compacter", *m, small_options());
  fill_randn(m->params().at("phm_rule"), 9, 0.5f);  // from N(0, 1e-4) to a size the check can see
  // 4 adapters x 2 PHM layers x (W_left, W_right, b) + the shared rule
  EXPECT_EQ(check_model_gradients(*m, 3, kDropoutSeed), 4u * 2u * 3u + 1u);
  int rules = 0;
  for (auto& p : m->params().all()) rules += p->name.find("phm_rule") != std::string::npos;
  EXPECT_EQ(rules, 1) << "the rule must be one parameter shared by every PHM layer";
}

TEST(Compacter, PlusPlusWithLayerNormsThroughFrozenBertWithDropout) {
  auto m = tiny_backbone(false, "compacterpp_grad", 52);
  auto o = small_options();
  o.set("train_layer_norms", true);
  auto method = make_method("compacter++", *m, o);
  fill_randn(m->params().at("phm_rule"), 9, 0.5f);
  EXPECT_EQ(check_model_gradients(*m, 4, kDropoutSeed), 2u * 2u * 3u + 1u + 10u);
  EXPECT_EQ(m->params().find("encoder.layer.0.attention.output.adapter.down.W_left"), nullptr);
  EXPECT_NE(m->params().find("encoder.layer.0.output.adapter.down.W_left"), nullptr);
}

TEST(Compacter, GradientsThroughFrozenGpt2WithDropout) {
  auto m = tiny_backbone(true, "compacter_gpt2", 53);
  auto method = make_method("compacter", *m, small_options());
  fill_randn(m->params().at("phm_rule"), 9, 0.5f);
  EXPECT_EQ(check_model_gradients(*m, 5, kDropoutSeed), 4u * 2u * 3u + 1u);
  EXPECT_NE(m->params().find("h.1.attn.adapter.up.W_right"), nullptr);
}

TEST(Compacter, InitialModelIsTheBackboneUpToTheRuleScale) {
  auto m = tiny_backbone(false, "compacter_init", 54);
  TinyBatch in(m->config().vocab_size);
  m->forward(in.view(), {});
  auto base = m->last_hidden().to_floats();
  auto method = make_method("compacter", *m, small_options());
  m->forward(in.view(), {});
  auto h = m->last_hidden().to_floats();
  for (size_t i = 0; i < base.size(); ++i) ASSERT_NEAR(h[i], base[i], 1e-4);  // rule ~ N(0, 1e-4)
}

// METHODS.md §3.2, counted by hand. Tiny BERT (d 16, m 4, n 2): down (16 + 4 + 4) + up (4 + 16 + 16) = 60
// per adapter. T5-base shape (d 768, rf 32 -> m 24, n 4): (4*192 + 4*6 + 24) + (4*6 + 4*192 + 768) = 2,376
// per adapter, rule 4^3 = 64, LayerNorms 62 x 768 = 47,616: Compacter++ (24 adapters) 0.0470% and Compacter
// (48) 0.0726% of 222,882,048.
TEST(Compacter, ParameterCountsMatchTheFormulas) {
  {
    auto m = tiny_backbone(false, "compacter_count", 55);
    auto method = make_method("compacter", *m, small_options());
    EXPECT_EQ(m->params().count(true), 4u * 60u + 8u);
  }
  {
    auto m = tiny_backbone(false, "compacterpp_count", 56);
    auto o = small_options();
    o.set("train_layer_norms", true);
    auto method = make_method("compacter++", *m, o);
    EXPECT_EQ(m->params().count(true), 2u * 60u + 8u + (1u + 2u * 2u) * 32u);  // + LayerNorms (w, b of 16)
  }
  ParameterRegistry reg;
  auto& rule = add_phm_rule(reg, 4, 1);
  auto ad = make_compacter_adapter(reg, "encoder.layer.0.output", 768, 32, rule, AdapterActivation::gelu_new, 1);
  EXPECT_EQ(ad->m(), 24);
  EXPECT_EQ(ad->num_params(), 2376u);
  EXPECT_EQ(reg.count(true), 2376u + 64u);
  const double t5 = 222882048.0, ln = 62.0 * 768;
  EXPECT_NEAR(100.0 * (24 * double(ad->num_params()) + 64 + ln) / t5, 0.0470, 5e-5);
  EXPECT_NEAR(100.0 * (48 * double(ad->num_params()) + 64 + ln) / t5, 0.0726, 5e-5);
}

TEST(Compacter, IndivisibleShapesAreNamedErrors) {
  auto m = tiny_backbone(false, "compacter_bad", 57);
  auto o = small_options();
  o.set("compacter_n", 3);
  try {
    make_method("compacter", *m, o);
    ADD_FAILURE() << "n = 3 does not divide 16";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("compacter_n 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m->params().find("phm_rule"), nullptr);
}
