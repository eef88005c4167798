// Bottleneck adapters (Houlsby / Pfeiffer): the activations and one adapter against finite differences,
// gradients through whole tiny BERT / GPT-2 models with dropout, frozen backbones, parameter names and
// counts, the init, and seam conflicts between methods.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapters/adapter_methods.h"
#include "adapters/method_registry.h"
#include "adapters/bottleneck_adapter.h"
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
using ladder::test::tiny_backbone;

using ladder::test::check_model_gradients;

namespace {
constexpr uint64_t kDropoutSeed = 77;  // this file's whole-model gradient checks
}  // namespace

namespace {

// Adapter weights from N(0, 0.02) to N(0, 0.3), so an adapter's Jacobian is large enough for a wrong
// input gradient to show in the parameters below it.
void boost(Backbone& m) {
  unsigned s = 30;
  for (auto& p : m.params().all())
    if (p->name.find(".adapter.") != std::string::npos && p->name.find(".weight") != std::string::npos) {
      auto v = ladder::test::randn(size_t(p->value.numel()), s++, 0.3f);
      std::copy(v.begin(), v.end(), p->w());
    }
}

MethodConfig small_options(const std::string& act) {
  MethodConfig o;
  o.set("adapter_reduction", 4);  // d = 16 -> m = 4
  o.set("adapter_activation", act);
  return o;
}

}  // namespace

TEST(BottleneckAdapter, ActivationDerivativesMatchFiniteDifferences) {
  for (auto act : {AdapterActivation::relu, AdapterActivation::swish, AdapterActivation::gelu, AdapterActivation::gelu_new}) {
    // values away from relu's kink
    std::vector<float> z = {-2.1f, -0.7f, -0.3f, 0.2f, 0.6f, 1.3f, 2.4f, -1.6f};
    auto r = ladder::test::randn(z.size(), 3);
    std::vector<float> a(z.size()), dz(z.size());
    adapter_activation_backward(dz.data(), r.data(), z.data(), z.size(), act);
    auto loss = [&]() {
      adapter_activation_forward(a.data(), z.data(), z.size(), act);
      return dot(a.data(), r);
    };
    ladder::test::expect_grad_ok("activation " + std::to_string(int(act)), loss, z.data(), z.size(), dz.data(), 1e-2, 1e-4, 1e-3);
  }
  EXPECT_EQ(parse_adapter_activation("silu"), AdapterActivation::swish);
  EXPECT_THROW(parse_adapter_activation("tanh"), std::invalid_argument);
}

// One adapter as a hook on a random h: d(input) and every parameter against element-wise differences.
TEST(BottleneckAdapter, HookGradientsMatchFiniteDifferences) {
  for (auto act : {AdapterActivation::swish, AdapterActivation::gelu, AdapterActivation::relu}) {
    ParameterRegistry reg;
    const int N = 5, d = 8;
    auto ad = BottleneckAdapter::dense(reg, "encoder.layer.0.output", d, 2, act, AdapterInit::bert, 9);
    for (auto& p : reg.all()) {  // larger than the 0.02 init so the check sees real curvature
      auto v = ladder::test::randn(size_t(p->value.numel()), 11, 0.5f);
      std::copy(v.begin(), v.end(), p->w());
    }
    reg.allocate_gradients();
    auto h = ladder::test::randn(size_t(N) * d, 5);
    auto r = ladder::test::randn(size_t(N) * d, 6);
    std::vector<float> out = h;
    StepOptions so;
    BranchCall save{&so, true, nullptr, 0}, nosave{&so, false, nullptr, 0};
    ad->forward(out.data(), N, save);
    std::vector<float> dh = r;
    ad->backward(dh.data(), N);
    auto loss = [&]() {
      std::vector<float> o = h;
      ad->forward(o.data(), N, nosave);
      return dot(o.data(), r);
    };
    // eps 1e-2: the output h + f(h) is rounded to float (~1e-7 absolute), which a smaller step amplifies
    ladder::test::expect_grad_ok("adapter dh", loss, h.data(), h.size(), dh.data(), 2e-2, 5e-3, 1e-2);
    for (auto* p : reg.trainable()) {
      auto g = p->grad.to_floats();
      ladder::test::expect_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), g.data(), 2e-2, 5e-3, 1e-2);
    }
  }
}

TEST(BottleneckAdapter, HoulsbyGradientsThroughFrozenBertWithDropout) {
  auto m = tiny_backbone(false, "houlsby_grad", 41);
  auto method = make_method("houlsby", *m, small_options("swish"));
  boost(*m);
  EXPECT_EQ(check_model_gradients(*m, 3, kDropoutSeed), 2u * 2u * 4u);  // 2 layers x 2 adapters x (W, b) x 2 projections
}

TEST(BottleneckAdapter, PfeifferGradientsThroughFrozenBertWithDropout) {
  auto m = tiny_backbone(false, "pfeiffer_grad", 42);
  auto method = make_method("pfeiffer", *m, small_options("gelu"));
  boost(*m);
  EXPECT_EQ(check_model_gradients(*m, 4, kDropoutSeed), 2u * 4u);
  // only after the FFN
  EXPECT_NE(m->params().find("encoder.layer.1.output.adapter.up.weight"), nullptr);
  EXPECT_EQ(m->params().find("encoder.layer.1.attention.output.adapter.up.weight"), nullptr);
}

TEST(BottleneckAdapter, HoulsbyGradientsThroughFrozenGpt2WithDropout) {
  auto m = tiny_backbone(true, "houlsby_gpt2", 43);
  // swish: a finite difference through ReLU's kink is not a derivative (ReLU is checked in the unit test)
  auto method = make_method("houlsby", *m, small_options("swish"));
  boost(*m);
  EXPECT_EQ(check_model_gradients(*m, 5, kDropoutSeed), 2u * 2u * 4u);
  for (const char* n : {"h.0.attn.adapter.down.weight", "h.0.mlp.adapter.up.bias", "h.1.attn.adapter.up.weight"})
    EXPECT_NE(m->params().find(n), nullptr) << n;
}

TEST(BottleneckAdapter, TrainLayerNormsUnfreezesEveryLayerNorm) {
  auto m = tiny_backbone(false, "houlsby_ln", 44);
  auto o = small_options("gelu");
  o.set("train_layer_norms", true);
  auto method = make_method("pfeiffer", *m, o);
  // embeddings.LayerNorm + 2 per layer, weight and bias each
  EXPECT_EQ(check_model_gradients(*m, 6, kDropoutSeed), 2u * 4u + 2u * (1 + 2 * 2));
  EXPECT_TRUE(m->params().at("encoder.layer.0.attention.output.LayerNorm.weight").trainable);
  EXPECT_FALSE(m->params().at("encoder.layer.0.attention.self.query.weight").trainable);
}

TEST(BottleneckAdapter, NamesCountsAndShapes) {
  auto m = tiny_backbone(false, "houlsby_names", 45);
  const size_t before = m->params().count(false);
  auto method = make_method("houlsby", *m, small_options("relu"));
  // d = 16, m = 4: (16*4 + 4) + (4*16 + 16) = 148 per adapter, 4 adapters
  EXPECT_EQ(m->params().count(true), 4u * 148u);
  EXPECT_EQ(m->params().count(false), before + 4u * 148u);
  auto& down = m->params().at("encoder.layer.1.attention.output.adapter.down.weight");
  EXPECT_EQ(down.value.dim(0), 4);
  EXPECT_EQ(down.value.dim(1), 16);
  EXPECT_EQ(m->params().at("encoder.layer.0.output.adapter.up.weight").value.dim(0), 16);
  for (auto* p : m->params().trainable()) EXPECT_EQ(p->name.rfind("encoder.layer.", 0), 0u) << p->name;
  auto* bert = dynamic_cast<BertModel*>(m.get());
  for (auto* l : bert->layers()) {
    EXPECT_NE(l->after_attention, nullptr);
    EXPECT_NE(l->after_ffn, nullptr);
  }
}

// BERT-base shape (d = 768, rf 16 -> m = 48), counted by hand: (768*48 + 48) + (48*768 + 768) = 74,544 per
// adapter; Houlsby puts 2 per layer in 12 layers = 1,789,056 (1.63% of BERT-base's 109,482,240).
TEST(BottleneckAdapter, BertBaseParameterCount) {
  ParameterRegistry reg;
  auto ad = BottleneckAdapter::dense(reg, "encoder.layer.0.output", 768, 16, AdapterActivation::relu, AdapterInit::bert, 1);
  EXPECT_EQ(reg.count(true), 74544u);
  EXPECT_EQ(ad->num_params(), 74544u);
  EXPECT_EQ(ad->m(), 48);
  EXPECT_EQ(24u * reg.count(true), 1789056u);
}

TEST(BottleneckAdapter, InitIsNearIdentityAndZeroUpIsExact) {
  auto m = tiny_backbone(false, "houlsby_init", 46);
  TinyBatch in(m->config().vocab_size);
  m->forward(in.view(), {});
  auto base = m->last_hidden().to_floats();
  // zero_up: exactly the backbone
  auto* bert = dynamic_cast<BertModel*>(m.get());
  std::vector<std::unique_ptr<BottleneckAdapter>> ads;
  for (auto* l : bert->layers()) {
    ads.push_back(BottleneckAdapter::dense(m->params(), "encoder.layer." + std::to_string(l->layer_index) + ".output", 16, 4,
                                           AdapterActivation::relu, AdapterInit::zero_up, 3));
    l->after_ffn = ads.back().get();
  }
  m->forward(in.view(), {});
  auto z = m->last_hidden().to_floats();
  for (size_t i = 0; i < base.size(); ++i) ASSERT_EQ(z[i], base[i]);
  // AdapterHub "bert" init (N(0, 0.02) on both projections): close to the backbone, but not equal
  auto m2 = tiny_backbone(false, "houlsby_init2", 46);
  auto method = make_method("houlsby", *m2, small_options("relu"));
  m2->forward(in.view(), {});
  auto h = m2->last_hidden().to_floats();
  double maxdiff = 0;
  for (size_t i = 0; i < base.size(); ++i) maxdiff = std::max(maxdiff, double(std::fabs(h[i] - base[i])));
  EXPECT_GT(maxdiff, 0.0);
  EXPECT_LT(maxdiff, 2e-2);
}

TEST(BottleneckAdapter, SeamConflictsAreNamedErrors) {
  auto m = tiny_backbone(false, "houlsby_conflict", 47);
  auto o = small_options("relu");
  o.set("compacter_n", 2);
  auto h = make_method("houlsby", *m, o);
  const size_t count = m->params().all().size();
  try {
    make_method("compacter", *m, o);
    ADD_FAILURE() << "houlsby + compacter must conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.layer.0 after_attention"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_method("pfeiffer", *m, o), std::invalid_argument);
  EXPECT_EQ(m->params().all().size(), count) << "a refused method registered parameters";
  // different seams compose
  EXPECT_NO_THROW(make_method("krona_b", *m, [] { MethodConfig k; k.set("krona_a1", 4); k.set("krona_a2", 4); return k; }()));
  auto g = tiny_backbone(true, "pfeiffer_conflict", 48);
  auto p = make_method("pfeiffer", *g, o);
  try {
    make_method("compacter++", *g, o);
    ADD_FAILURE() << "pfeiffer + compacter++ must conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("h.0 after_ffn"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make_method("compacter", *tiny_backbone(false, "houlsby_ok", 49), o));
  EXPECT_THROW(make_method("houlsby", *g, [] { MethodConfig k; k.set("adapter_reduction", 3); return k; }()),
               std::invalid_argument);
  EXPECT_THROW(make_method("bogus", *g, o), std::invalid_argument);
  EXPECT_EQ(adapter_method_infos().size(), 7u);
}
