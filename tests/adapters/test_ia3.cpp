// (IA)^3: exact gradients of the scaling vectors (output side with its bias, input side, a trainable weight
// under an input scale), the unchanged model at init, merge / unmerge in both weight layouts, the PEFT
// adapter it exports, and its errors.
#include <gtest/gtest.h>

#include <cmath>

#include "adapters/method_registry.h"
#include "tests/support/gradcheck.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

using namespace ladder::core;
using namespace ladder::adapters;

using ladder::test::TinyBatch;
using ladder::test::dot;
using ladder::test::tiny_backbone;

namespace {

// The vectors start at 1, where every scale is the identity: move them off it so that a wrong formula
// (a missing factor l) shows.
void perturb_vectors(Backbone& m, unsigned seed) {
  for (auto& p : m.params().all())
    if (p->name.find(".ia3_l") != std::string::npos) {
      auto r = ladder::test::randn(size_t(p->value.numel()), seed++, 0.3f);
      for (int64_t i = 0; i < p->value.numel(); ++i) p->w()[i] = 1.0f + r[size_t(i)];
    }
}

std::vector<float> hidden(Backbone& m, const TinyBatch& in) {
  StepOptions o;
  m.forward(in.view(), o);
  return m.last_hidden().to_floats();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, double(std::fabs(a[i] - b[i])));
  return w;
}

void check_gradients(Backbone& m, unsigned seed) {
  // The loss reads the last hidden state, which the pooler does not feed.
  ladder::test::check_model_gradients(m, seed, 81, {"pooler."});
}

}  // namespace

TEST(Ia3, TargetsPeftDefaultsAndOnlyTheVectorsTrain) {
  for (bool gpt : {false, true}) {
    auto m = tiny_backbone(gpt, gpt ? "ia3_targets_g" : "ia3_targets_b", 50);
    auto methods = apply_methods(*m, "ia3", {});
    const int L = m->config().layers, C = m->config().hidden, F = m->config().intermediate;
    size_t n = 0;
    for (auto* p : m->params().trainable()) {
      EXPECT_NE(p->name.find(".ia3_l"), std::string::npos) << p->name;
      n += size_t(p->value.numel());
    }
    // BERT: key, value (C each) and output.dense's input (F); GPT-2: c_attn's output (3C) and c_proj's input (F).
    EXPECT_EQ(n, size_t(L) * (gpt ? 3 * C + F : 2 * C + F));
    for (auto* p : m->params().trainable())
      for (int64_t i = 0; i < p->value.numel(); ++i) ASSERT_EQ(p->w()[i], 1.0f) << p->name;
  }
}

TEST(Ia3, AtInitTheModelIsUnchangedBitForBit) {
  for (bool gpt : {false, true}) {
    auto plain = tiny_backbone(gpt, "ia3_init_plain", 51);
    auto scaled = tiny_backbone(gpt, "ia3_init_scaled", 51);
    auto methods = apply_methods(*scaled, "ia3", {});
    TinyBatch in(plain->config().vocab_size);
    EXPECT_EQ(hidden(*plain, in), hidden(*scaled, in)) << (gpt ? "gpt2" : "bert");
  }
}

TEST(Ia3, GradientsOfEveryVectorAreExact) {
  for (bool gpt : {false, true}) {
    auto m = tiny_backbone(gpt, gpt ? "ia3_grad_g" : "ia3_grad_b", 52);
    auto methods = apply_methods(*m, "ia3", {});
    perturb_vectors(*m, 3);
    check_gradients(*m, 7);
  }
}

TEST(Ia3, GradientsWithTrainableBiasesAndAWeightUnderAnInputScale) {
  auto m = tiny_backbone(false, "ia3_grad_bitfit", 53);
  auto methods = apply_methods(*m, "ia3+bitfit", {});
  perturb_vectors(*m, 4);
  // A trainable weight behind an input scale learns from the scaled input.
  m->params().set_trainable("encoder.layer.0.output.dense.weight", true);
  check_gradients(*m, 8);
}

TEST(Ia3, MergeFoldsTheVectorsIntoTheWeightsAndUnmergeRestoresThem) {
  for (bool gpt : {false, true}) {
    auto m = tiny_backbone(gpt, gpt ? "ia3_merge_g" : "ia3_merge_b", 54);
    auto methods = apply_methods(*m, "ia3", {});
    perturb_vectors(*m, 5);
    TinyBatch in(m->config().vocab_size);
    const auto before = hidden(*m, in);
    ASSERT_TRUE(methods[0]->mergeable());
    methods[0]->merge();
    const auto merged = hidden(*m, in);
    methods[0]->unmerge();
    const auto after = hidden(*m, in);
    // Folding reorders one multiplication per weight element: a few float32 ulps of the hidden size.
    EXPECT_LT(max_diff(before, merged), 1e-5) << (gpt ? "gpt2" : "bert");
    EXPECT_LT(max_diff(before, after), 1e-5) << (gpt ? "gpt2" : "bert");
  }
}

TEST(Ia3, ExportsAPeftIa3Adapter) {
  auto m = tiny_backbone(false, "ia3_peft", 55);
  auto methods = apply_methods(*m, "ia3", {});
  std::vector<std::string> modules;
  for (auto& [n, lin] : m->linear_modules()) modules.push_back(n);
  PeftAdapter a;
  ASSERT_TRUE(methods[0]->peft_adapter(a, modules));
  EXPECT_EQ(a.config["peft_type"], "IA3");
  const int L = m->config().layers, C = m->config().hidden, F = m->config().intermediate;
  ASSERT_EQ(a.tensors.size(), size_t(3 * L));
  for (auto& [name, t] : a.tensors) {
    ASSERT_NE(name.find(".ia3_l"), std::string::npos) << name;
    if (name.find(".output.dense") != std::string::npos) EXPECT_EQ(t.shape(), (Shape{1, F})) << name;
    else EXPECT_EQ(t.shape(), (Shape{C, 1})) << name;
  }
  // Every feedforward module is a target, and matches only output.dense modules.
  for (const auto& f : a.config["feedforward_modules"]) {
    const std::string s = f.get<std::string>();
    EXPECT_NE(std::find(a.config["target_modules"].begin(), a.config["target_modules"].end(), s),
              a.config["target_modules"].end()) << s;
    EXPECT_NE(s.find("output.dense"), std::string::npos) << s;
  }
}

TEST(Ia3, ErrorsNameTheConflictAndTheTarget) {
  auto m = tiny_backbone(false, "ia3_err", 56);
  try {
    apply_methods(*m, "ia3+lora", {});
    ADD_FAILURE() << "ia3 + lora must conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'lora'"), std::string::npos) << e.what();
  }
  MethodConfig o;
  o.set("ia3_targets", std::vector<std::string>{"keys"});
  auto m2 = tiny_backbone(false, "ia3_err2", 57);
  try {
    apply_methods(*m2, "ia3", o);
    ADD_FAILURE() << "an unknown target must be an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'keys'"), std::string::npos) << e.what();
  }
}
