// Method specs: parsing ("compacter++", combinations with '+'), which parameters train, and combinations
// that cannot work failing with both names.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "adapters/method.h"
#include "adapters/method_registry.h"
#include "adapters/target_linears.h"
#include "core/backbones/bert_model.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

namespace {
std::unique_ptr<core::Backbone> tiny_bert(const std::string& name) {
  return core::load_backbone(test::write_tiny_bert(test::temp_dir(name), 41));
}
std::string error_of(const std::string& spec) {
  auto m = tiny_bert("methods_err");
  try {
    adapters::apply_methods(*m, spec, {});
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Methods, LoraPlusBitfitTrainsLowRankFactorsAndBiasesOnly) {
  auto m = tiny_bert("methods_lb");
  auto methods = adapters::apply_methods(*m, "lora+bitfit", {});
  ASSERT_EQ(methods.size(), 2u);
  for (auto& p : m->params().all()) {
    const bool lora = p->name.find(".lora_") != std::string::npos;
    const bool bias = p->name.size() > 5 && p->name.compare(p->name.size() - 5, 5, ".bias") == 0;
    EXPECT_EQ(p->trainable, lora || bias) << p->name;
  }
}

TEST(Methods, CompacterPlusPlusParsesAloneAndCombined) {
  auto m = tiny_bert("methods_cpp");
  adapters::MethodConfig o;
  o.set("adapter_reduction", 4);
  o.set("compacter_n", 2);
  auto methods = adapters::apply_methods(*m, "compacter+++lora", o);
  ASSERT_EQ(methods.size(), 2u);
  EXPECT_EQ(methods[0]->name(), "compacter++");
  EXPECT_EQ(methods[1]->name(), "lora");
}

TEST(Methods, ImpossibleCombinationsNameBothMethods) {
  std::string e = error_of("full+lora");
  EXPECT_NE(e.find("full"), std::string::npos);
  EXPECT_NE(e.find("lora"), std::string::npos);
  e = error_of("lora+dylora");
  EXPECT_NE(e.find("lora"), std::string::npos);
  EXPECT_NE(e.find("dylora"), std::string::npos);
  EXPECT_NE(error_of("houlsby+pfeiffer").find("after_ffn"), std::string::npos) << error_of("houlsby+pfeiffer");
  EXPECT_NE(error_of("lora+lora").find("twice"), std::string::npos);
  e = error_of("lorra");
  EXPECT_NE(e.find("unknown method 'lorra'"), std::string::npos);
  EXPECT_NE(e.find("dylora"), std::string::npos) << "the valid names are listed";
  EXPECT_NE(error_of("lora+").find("empty"), std::string::npos);
}

TEST(Methods, LoraTargetsMapToModuleNamesAndRejectUnknownOnes) {
  auto m = tiny_bert("methods_targets");
  auto sel = adapters::select_linears(*m, {"ffn_out"});
  ASSERT_EQ(sel.size(), 2u);  // one per layer, not the attention output
  for (auto& [name, lin] : sel) EXPECT_EQ(name.find("attention"), std::string::npos) << name;
  EXPECT_EQ(adapters::select_linears(*m, {"qkv"}).size(), 6u);
  EXPECT_THROW(adapters::select_linears(*m, {"querry"}), std::invalid_argument);
  auto g = core::load_backbone(test::write_tiny_gpt2(test::temp_dir("methods_gpt"), 42));
  try {
    adapters::select_linears(*g, {"query"});
    FAIL() << "GPT-2 has no separate query projection";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("c_attn"), std::string::npos) << e.what();
  }
}

TEST(Methods, PromptTuningInsertsSoftTokensAfterCls) {
  auto m = tiny_bert("methods_prompt");
  adapters::MethodConfig o;
  o.set("prompt_tokens", 3);
  auto methods = adapters::apply_methods(*m, "prompt", o);
  EXPECT_EQ(adapters::total_prompt_tokens(methods), 3);
  std::vector<int32_t> ids = {2, 10, 11, 3}, types = {0, 0, 0, 0}, mask = {1, 1, 1, 1};
  adapters::insert_prompt_tokens(methods, *m, ids, types, mask);
  const int V = m->config().vocab_size;
  EXPECT_EQ(ids, (std::vector<int32_t>{2, V, V + 1, V + 2, 10, 11, 3}));
  EXPECT_EQ(types.size(), ids.size());
  EXPECT_EQ(mask.size(), ids.size());
  // The soft tokens run through the model and are the only trainable parameter.
  ASSERT_EQ(m->params().trainable().size(), 1u);
  EXPECT_EQ(m->params().trainable()[0]->name, "prompt_embeddings.weight");
  m->params().allocate_gradients();
  core::TokenBatch b{1, int(ids.size()), ids.data(), types.data(), nullptr};
  core::StepOptions opt;
  opt.save_for_backward = true;
  m->forward(b, opt);
  std::vector<float> d(size_t(ids.size()) * m->config().hidden, 1.0f);
  m->backward(d.data());
  double g = 0;
  for (float v : m->params().trainable()[0]->grad.to_floats()) g += std::fabs(v);
  EXPECT_GT(g, 0.0);
}

// StepOptions::first_token_only (the last layer computes only the CLS rows the pooler reads) must give the
// pooled output and every trainable gradient of the full path, with dropout on, padding, and each kind of
// method seam in the last layer: LoRA on all six Linears (with LoRA dropout), adapter hooks, PHM hooks and
// a branch parallel to the FFN.
namespace {
void expect_first_token_path_matches(const std::string& spec, adapters::MethodConfig mo) {
  auto m = core::load_backbone(test::write_tiny_bert(test::temp_dir("first_token_" + spec), 43));
  auto methods = adapters::apply_methods(*m, spec, mo);
  unsigned seed = 100;
  for (auto& p : m->params().all())  // zero-initialised factors would hide their partner's gradient
    if (p->trainable && (p->name.find("lora_B") != std::string::npos || p->name.find("up") != std::string::npos))
      test::fill_randn(*p, seed++, 0.2f);
  m->params().allocate_gradients();
  auto& bert = static_cast<core::BertModel&>(*m);
  test::TinyBatch tb(m->config().vocab_size);
  const int C = m->config().hidden;
  const auto r = test::randn(size_t(tb.B) * C, 5);
  struct Result {
    std::vector<float> pooled;
    std::vector<std::vector<float>> grads;
  };
  auto run = [&](bool first) {
    core::StepOptions opt;
    opt.save_for_backward = true;
    opt.training = true;
    opt.seed = 99;
    opt.first_token_only = first;
    m->params().zero_grad();
    for (auto& meth : methods) meth->on_step_begin(3);
    bert.forward(tb.view(), opt);
    Result res{bert.pooled().to_floats(), {}};
    bert.backward(nullptr, r.data(), {});
    for (auto* p : m->params().trainable()) res.grads.push_back(p->grad.to_floats());
    return res;
  };
  const Result full = run(false), first = run(true);
  for (size_t i = 0; i < full.pooled.size(); ++i) ASSERT_NEAR(full.pooled[i], first.pooled[i], 1e-5) << spec << " pooled " << i;
  const auto trainable = m->params().trainable();
  ASSERT_EQ(full.grads.size(), first.grads.size());
  // One tolerance per run, relative to its largest gradient: key biases have (mathematically) zero
  // gradient, so theirs are pure rounding noise of that size.
  float scale = 0;
  for (auto& g : full.grads)
    for (float v : g) scale = std::max(scale, std::fabs(v));
  for (size_t k = 0; k < full.grads.size(); ++k)
    for (size_t i = 0; i < full.grads[k].size(); ++i)
      ASSERT_NEAR(full.grads[k][i], first.grads[k][i], 1e-5f * scale) << spec << " " << trainable[k]->name << " [" << i << "]";
  EXPECT_THROW(m->last_hidden(), std::logic_error);  // the last forward skipped the other positions
}
}  // namespace

TEST(Methods, FirstTokenOnlyPathMatchesFullPathForEverySeam) {
  adapters::MethodConfig mo;
  mo.set("lora_dropout", 0.1f);
  mo.set("lora_targets", std::vector<std::string>{"query", "key", "value", "attention_output", "ffn_in", "ffn_out"});
  mo.set("adapter_reduction", 4);
  mo.set("krona_a1", 4);
  mo.set("krona_a2", 4);
  for (const char* spec : {"full", "lora", "houlsby", "compacter", "krona_b", "lora+bitfit"})
    expect_first_token_path_matches(spec, mo);
}
