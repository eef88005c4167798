// LoRA / DyLoRA branch: gradients through a whole (tiny) BERT with dropout, DyLoRA's nested ranks and
// frozen mode, merge/unmerge, and the frozen backbone staying untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapters/lora.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_batch.h"
#include "tests/support/tiny_models.h"

using namespace ladder::core;
using ladder::adapters::LoraBranch;
using ladder::adapters::LoraOptions;

using ladder::test::TinyBatch;
using ladder::test::dot;

namespace {

// LoRA on query/value/ffn_out of every layer; B made non-zero so A gets gradient too.
std::vector<std::unique_ptr<LoraBranch>> attach(Backbone& m, const LoraOptions& o) {
  std::vector<std::unique_ptr<LoraBranch>> out;
  for (auto& [name, lin] : m.linear_modules()) {
    if (name.find("query") == std::string::npos && name.find("value") == std::string::npos &&
        name.find("c_attn") == std::string::npos && name.find("output.dense") == std::string::npos)
      continue;
    out.push_back(std::make_unique<LoraBranch>(m.params(), name, *lin, o, 7));
    auto rb = ladder::test::randn(size_t(out.back()->B().value.numel()), unsigned(out.size()), 0.2f);
    std::copy(rb.begin(), rb.end(), out.back()->B().w());
  }
  m.params().allocate_gradients();
  return out;
}

}  // namespace

TEST(Lora, GradientsThroughFrozenBertWithDropout) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("lora_grad"), 31);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel m(cfg, SafetensorsCheckpoint::open_dir(dir));
  auto loras = attach(m, {4, 8.0f, 0.1f});
  EXPECT_EQ(m.params().trainable().size(), loras.size() * 2);
  TinyBatch in(cfg.vocab_size);
  const int N = in.B * in.T, C = cfg.hidden;
  auto r = ladder::test::randn(size_t(N) * C, 3);
  StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = 77;
  m.forward(in.view(), opt);
  m.backward(r.data());
  StepOptions fwd = opt;
  fwd.save_for_backward = false;
  auto loss = [&]() {
    m.forward(in.view(), fwd);
    return dot(m.last_hidden(), r);
  };
  for (auto* p : m.params().trainable()) {
    auto g = p->grad.to_floats();
    ladder::test::expect_directional_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), g.data(), 1e-2, 5e-3, 3e-3);
  }
  for (auto& p : m.params().all()) {
    if (!p->trainable) {
      EXPECT_FALSE(p->grad.defined()) << p->name;
    }
  }
}

TEST(Lora, DyLoraFrozenModeTrainsOnlyTheNewestRank) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("dylora"), 32);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel m(cfg, SafetensorsCheckpoint::open_dir(dir));
  auto loras = attach(m, {4, 8.0f, 0.0f});
  for (auto& l : loras) l->set_active_rank(3, /*frozen=*/true);
  TinyBatch in(cfg.vocab_size);
  auto r = ladder::test::randn(size_t(in.B * in.T * cfg.hidden), 5);
  StepOptions opt;
  opt.save_for_backward = true;
  m.forward(in.view(), opt);
  m.backward(r.data());
  for (auto& l : loras) {
    const int in_dim = int(l->A().value.dim(1)), out_dim = int(l->B().value.dim(0));
    auto ga = l->A().grad.to_floats(), gb = l->B().grad.to_floats();
    double newest = 0;
    for (int row = 0; row < 4; ++row)
      for (int c = 0; c < in_dim; ++c) {
        float v = ga[size_t(row) * in_dim + c];
        if (row == 2) {
          newest += std::fabs(v);
        } else {
          EXPECT_EQ(v, 0.0f) << l->A().name << " row " << row;
        }
      }
    for (int o = 0; o < out_dim; ++o)
      for (int col = 0; col < 4; ++col)
        if (col != 2) {
          EXPECT_EQ(gb[size_t(o) * 4 + col], 0.0f) << l->B().name << " col " << col;
        }
    EXPECT_GT(newest, 0.0) << l->A().name;
  }
  // The effective scale at rank b is alpha / b (the paper code's sqrt(r/b) on each factor times alpha/r).
  EXPECT_FLOAT_EQ(loras[0]->scale(), 8.0f / 3.0f);
}

TEST(Lora, NestedRankOneEqualsAnIndependentRankOneLora) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("dylora_nested"), 33);
  auto cfg = TransformerConfig::from_json_file(dir + "/config.json");
  BertModel m4(cfg, SafetensorsCheckpoint::open_dir(dir)), m1(cfg, SafetensorsCheckpoint::open_dir(dir));
  auto l4 = attach(m4, {4, 8.0f, 0.0f});
  auto l1 = attach(m1, {1, 8.0f, 0.0f});
  for (size_t i = 0; i < l4.size(); ++i) {
    l4[i]->set_active_rank(1, false);
    const int in_dim = int(l4[i]->A().value.dim(1)), out_dim = int(l4[i]->B().value.dim(0));
    for (int c = 0; c < in_dim; ++c) l1[i]->A().w()[c] = l4[i]->A().w()[c];
    for (int o = 0; o < out_dim; ++o) l1[i]->B().w()[o] = l4[i]->B().w()[size_t(o) * 4];
  }
  TinyBatch in(cfg.vocab_size);
  m4.forward(in.view(), {});
  auto a = m4.last_hidden().to_floats();
  m1.forward(in.view(), {});
  auto b = m1.last_hidden().to_floats();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5);
}

TEST(Lora, MergeGivesTheSameOutputAndUnmergeRestoresTheWeight) {
  for (bool gpt : {false, true}) {
    auto dir = gpt ? ladder::test::write_tiny_gpt2(ladder::test::temp_dir("lora_merge_g"), 34)
                   : ladder::test::write_tiny_bert(ladder::test::temp_dir("lora_merge_b"), 34);
    auto m = load_backbone(dir);
    auto loras = attach(*m, {4, 8.0f, 0.0f});
    ASSERT_FALSE(loras.empty());
    const std::string wname = gpt ? "h.0.attn.c_attn.weight" : "encoder.layer.0.attention.self.query.weight";
    auto w0 = m->params().at(wname).value.to_floats();
    TinyBatch in(m->config().vocab_size);
    m->forward(in.view(), {});
    auto before = m->last_hidden().to_floats();
    for (auto& l : loras) l->merge();
    m->forward(in.view(), {});
    auto merged = m->last_hidden().to_floats();
    for (size_t i = 0; i < before.size(); ++i) ASSERT_NEAR(before[i], merged[i], 2e-5) << (gpt ? "gpt2" : "bert");
    auto wm = m->params().at(wname).value.to_floats();
    double diff = 0;
    for (size_t i = 0; i < w0.size(); ++i) diff += std::fabs(wm[i] - w0[i]);
    EXPECT_GT(diff, 1e-3) << "merge changed nothing";
    for (auto& l : loras) l->unmerge();
    auto wu = m->params().at(wname).value.to_floats();
    for (size_t i = 0; i < w0.size(); ++i) ASSERT_NEAR(wu[i], w0[i], 1e-6);
  }
}

TEST(Lora, RejectsBadOptions) {
  auto dir = ladder::test::write_tiny_bert(ladder::test::temp_dir("lora_bad"), 35);
  auto m = load_backbone(dir);
  auto mods = m->linear_modules();
  EXPECT_THROW(LoraBranch(m->params(), mods[0].first, *mods[0].second, {0, 8.0f, 0.0f}, 1), std::invalid_argument);
  EXPECT_THROW(LoraBranch(m->params(), mods[0].first, *mods[0].second, {4, 8.0f, 1.0f}, 1), std::invalid_argument);
  LoraBranch ok(m->params(), mods[0].first, *mods[0].second, {4, 8.0f, 0.0f}, 1);
  EXPECT_THROW(LoraBranch(m->params(), mods[0].first + "x", *mods[0].second, {4, 8.0f, 0.0f}, 1), std::invalid_argument);
  EXPECT_THROW(ok.set_active_rank(5, false), std::out_of_range);
}
