// Every method that applies to a Llama-family decoder, on a tiny Llama and a tiny Gemma 3 (grouped-query
// attention, a sliding-window layer, attention dropout on): each installs where the backbone's seams say,
// every trainable parameter's gradient agrees with finite differences through the whole decoder in
// training mode (prompt tuning's rows are exercised by the causal-LM runs in tests/apps), and BitFit, which needs biases these models do not have, is refused by name.
#include <gtest/gtest.h>

#include "adapters/method_registry.h"
#include "tests/support/model_gradcheck.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

namespace {

struct Case {
  std::string method;
  bool gemma;
};

class DecoderMethods : public ::testing::TestWithParam<Case> {};

TEST_P(DecoderMethods, GradientsOfEveryTrainableParameterAreExact) {
  const Case c = GetParam();
  auto m = core::load_backbone(test::write_tiny_llama(test::temp_dir("dec_" + c.method + (c.gemma ? "_g" : "_l")), 5, c.gemma, 0.1f));
  adapters::MethodConfig o;
  if (c.method == "lora" || c.method == "dylora")
    o.set("lora_targets", std::vector<std::string>{"query", "key", "value", "attention_output", "ffn_in", "ffn_out"});
  o.set("adapter_reduction", 4);  // a bottleneck of 4 units on d = 16
  o.set("adapter_activation", std::string("gelu"));  // smooth: finite differences across ReLU kinks are meaningless
  auto methods = adapters::apply_methods(*m, c.method, o);
  // Start methods away from their identity (LoRA's B = 0, (IA)^3's l = 1) so a wrong formula shows.
  for (auto& p : m->params().all()) {
    if (!p->trainable || c.method == "full") continue;
    auto r = test::randn(size_t(p->value.numel()), 9, 0.02f);
    for (int64_t i = 0; i < p->value.numel(); ++i) p->w()[i] += r[size_t(i)];
  }
  // The loss reads the last hidden state: an untied LM head gets no gradient from it.
  const size_t n = test::check_model_gradients(*m, 3, 17, {"lm_head."});
  EXPECT_GT(n, 0u);
}

INSTANTIATE_TEST_SUITE_P(Methods, DecoderMethods,
                         ::testing::Values(Case{"lora", false}, Case{"dylora", false}, Case{"ia3", false},
                                           Case{"full", false}, Case{"houlsby", false},
                                           Case{"lora", true}, Case{"ia3", true},
                                           Case{"full", true}, Case{"pfeiffer", true}),
                         [](const auto& info) { return info.param.method + (info.param.gemma ? "_gemma3" : "_llama"); });

TEST(DecoderMethods, BitFitIsRefusedWithoutBiases) {
  auto m = core::load_backbone(test::write_tiny_llama(test::temp_dir("dec_bitfit"), 5, false));
  try {
    adapters::apply_methods(*m, "bitfit", adapters::MethodConfig{});
    FAIL() << "bitfit on a model without biases must throw";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no bias"), std::string::npos) << e.what();
  }
}

}  // namespace
