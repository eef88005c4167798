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

// Prompt tuning: soft tokens first (a decoder's prompt position), read through ids past the vocabulary; its
// rows get exact gradients through every layer, the embedding scale of Gemma included.
TEST(DecoderMethods, PromptTuningRowsGetExactGradients) {
  for (bool gemma : {false, true}) {
    auto m = core::load_backbone(test::write_tiny_llama(test::temp_dir(gemma ? "dec_prompt_g" : "dec_prompt_l"), 5, gemma, 0.0f));
    adapters::MethodConfig o;
    o.set("prompt_tokens", 3);
    auto methods = adapters::apply_methods(*m, "prompt", o);
    m->params().allocate_gradients();
    const int V = m->config().vocab_size, C = m->config().hidden, B = 2, T = 7;
    std::vector<int32_t> ids = {V, V + 1, V + 2, 5, 9, 11, 4, V, V + 1, V + 2, 7, 3, 2, 2};
    std::vector<float> mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const core::TokenBatch b{B, T, ids.data(), nullptr, mask.data()};
    const auto r = test::randn(size_t(B) * T * C, 4);
    core::StepOptions opt;
    opt.save_for_backward = true;
    opt.training = true;
    m->forward(b, opt);
    m->backward(r.data());
    core::Parameter& rows = m->params().at("prompt_embeddings.weight");
    const auto g = rows.grad.to_floats();
    core::StepOptions fwd = opt;
    fwd.save_for_backward = false;
    auto loss = [&] {
      m->forward(b, fwd);
      return test::dot(m->last_hidden(), r);
    };
    test::expect_directional_grad_ok(gemma ? "gemma3 prompt rows" : "llama prompt rows", loss, rows.w(),
                                     size_t(rows.value.numel()), g.data(), 1e-2, 5e-3, 3e-3);
  }
}

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
