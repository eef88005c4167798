// Ladder Side-Tuning's side network: gradients of every side parameter (gates, ladders, first
// downsample, side blocks, upsample) by finite differences with dropout on, on BERT and GPT-2 backbones;
// gates start at 1/2; layer dropping; the magnitude-pruned initialisation against an independent
// re-derivation; the backbone gets no gradients; configuration errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "adapters/lst/side_network.h"
#include "core/backbones/bert_model.h"
#include "tests/support/tiny_batch.h"

using namespace ladder;

namespace {

struct Rig {
  std::unique_ptr<core::Backbone> bb;
  std::unique_ptr<adapters::LstSideNetwork> side;
  test::TinyBatch tb;
  Rig(bool gpt, const std::string& tag, adapters::LstOptions o)
      : bb(test::tiny_backbone(gpt, tag, 61)), tb(bb->config().vocab_size) {
    side = std::make_unique<adapters::LstSideNetwork>(*bb, o);
    bb->params().allocate_gradients();
  }
  std::vector<int> feature_rows() const {
    if (bb->config().arch != core::Architecture::gpt2) return {};
    return {tb.T - 1, 3};  // row 1 has two padded positions: its last real token is 3
  }
  // Backbone without gradients, taps, side network; returns the features.
  const core::Tensor& run(bool save) {
    core::StepOptions bo;
    bo.keep_hidden_states = true;
    bb->forward(tb.view(), bo);
    std::vector<adapters::TapRows> taps;
    for (int t : side->taps()) taps.push_back({bb->hidden_state(t).data<float>(), core::DType::f32});
    core::StepOptions so;
    so.save_for_backward = save;
    so.training = true;  // dropout on in the side network
    so.seed = 77;
    return side->forward(taps, tb.view(), so, feature_rows());
  }
};

void check_gradients(bool gpt) {
  adapters::LstOptions o;
  o.reduction = 2;
  o.layers = {1};  // layer dropping: only layer 1 gets a side block (the tiny backbones have 2 layers)
  o.init = "random";
  Rig rig(gpt, gpt ? "lst_grad_gpt" : "lst_grad_bert", o);
  // Side weights larger than the N(0, 0.02) init so that attention is far from uniform and the Q/K
  // gradients are well above float32 noise; gates away from 1/2 so that both mixing terms matter.
  unsigned seed = 300;
  for (auto& p : rig.bb->params().all())
    if (p->name.rfind("side.layer.", 0) == 0 && p->name.find("LayerNorm") == std::string::npos &&
        p->name.find(".weight") != std::string::npos)
      test::fill_randn(*p, seed++, 0.4f);
  core::Parameter& alpha = rig.bb->params().at("side.gate_alpha");
  alpha.w()[0] = 0.03f;
  alpha.w()[1] = -0.05f;
  const int B = rig.tb.B, C = rig.bb->config().hidden;
  const auto R = test::randn(size_t(B) * C, 9);
  rig.bb->params().zero_grad();
  rig.run(true);
  rig.side->backward(R.data());
  auto loss = [&]() { return test::dot(rig.run(false), R); };
  size_t checked = 0;
  for (auto* p : rig.bb->params().trainable()) {
    if (p->name.rfind("side.", 0) != 0) continue;  // the head is not part of the side network
    std::vector<float> analytic = p->grad.to_floats();
    test::expect_directional_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), analytic.data(), 2e-2, 3e-4, 3e-3);
    ++checked;
  }
  EXPECT_GT(checked, 10u);
  // alpha of a dropped layer gets no gradient; the kept layer's does.
  EXPECT_EQ(alpha.grad.to_floats()[0], 0.0f);
  EXPECT_NE(alpha.grad.to_floats()[1], 0.0f);
  // The backbone's own parameters stay frozen and gradient-free.
  for (auto& p : rig.bb->params().all())
    if (p->name.rfind("side.", 0) != 0 && p->name.rfind("classifier", 0) != 0 && p->name.rfind("score", 0) != 0) {
      EXPECT_FALSE(p->trainable) << p->name;
      EXPECT_FALSE(p->grad.defined()) << p->name;
    }
}

}  // namespace

TEST(Lst, BertSideNetworkGradients) { check_gradients(false); }
TEST(Lst, Gpt2SideNetworkGradients) { check_gradients(true); }

TEST(Lst, GatesStartAtOneHalfAndTapsFollowTheKeptLayers) {
  adapters::LstOptions o;
  o.reduction = 2;
  Rig all(false, "lst_taps_all", o);
  EXPECT_EQ(all.side->taps(), (std::vector<int>{0, 1, 2}));
  EXPECT_FLOAT_EQ(all.side->gate(0), 0.5f);
  EXPECT_FLOAT_EQ(all.side->gate(1), 0.5f);
  EXPECT_EQ(all.side->width(), all.bb->config().hidden / 2);
  o.layers = {1};
  Rig one(false, "lst_taps_one", o);
  EXPECT_EQ(one.side->taps(), (std::vector<int>{0, 2}));
  EXPECT_EQ(one.bb->params().find("side.layer.0.attention.self.query.weight"), nullptr);
  EXPECT_NE(one.bb->params().find("side.layer.1.attention.self.query.weight"), nullptr);
  EXPECT_EQ(one.bb->params().at("side.gate_alpha").value.numel(), 2);  // one per backbone layer, dropped ones too
}

// An independent derivation of LST's v2 pruning for layer 0's query/key/value and attention output.
TEST(Lst, MagnitudeInitIsThePrunedBackbone) {
  adapters::LstOptions o;
  o.reduction = 2;
  o.init = "magnitude";
  Rig rig(false, "lst_prune", o);
  auto& reg = rig.bb->params();
  const int C = rig.bb->config().hidden, c = C / 2, V = rig.bb->config().vocab_size;
  auto top = [](const std::vector<double>& score, int k) {
    std::vector<int> idx(score.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score[size_t(a)] > score[size_t(b)]; });
    idx.resize(size_t(k));
    std::sort(idx.begin(), idx.end());
    return idx;
  };
  const auto emb = reg.at("embeddings.word_embeddings.weight").value.to_floats();
  std::vector<double> col(size_t(C), 0);
  for (int v = 0; v < V; ++v)
    for (int j = 0; j < C; ++j) col[size_t(j)] += std::fabs(emb[size_t(v) * C + j]);
  const auto cols = top(col, c);
  const auto q = reg.at("encoder.layer.0.attention.self.query.weight").value.to_floats();
  const auto k = reg.at("encoder.layer.0.attention.self.key.weight").value.to_floats();
  const auto v = reg.at("encoder.layer.0.attention.self.value.weight").value.to_floats();
  std::vector<double> row(size_t(C), 0);
  for (int r = 0; r < C; ++r)
    for (int j : cols) row[size_t(r)] += std::fabs(double(q[size_t(r) * C + j]) * k[size_t(r) * C + j] * v[size_t(r) * C + j]);
  const auto rows = top(row, c);
  const auto sq = reg.at("side.layer.0.attention.self.query.weight").value.to_floats();
  const auto sv = reg.at("side.layer.0.attention.self.value.weight").value.to_floats();
  ASSERT_EQ(sq.size(), size_t(c) * c);
  for (int a = 0; a < c; ++a)
    for (int b = 0; b < c; ++b) {
      ASSERT_EQ(sq[size_t(a) * c + b], q[size_t(rows[size_t(a)]) * C + cols[size_t(b)]]);
      ASSERT_EQ(sv[size_t(a) * c + b], v[size_t(rows[size_t(a)]) * C + cols[size_t(b)]]);
    }
  const auto qb = reg.at("encoder.layer.0.attention.self.query.bias").value.to_floats();
  const auto sqb = reg.at("side.layer.0.attention.self.query.bias").value.to_floats();
  for (int a = 0; a < c; ++a) EXPECT_EQ(sqb[size_t(a)], qb[size_t(rows[size_t(a)])]);
  // The output projection's inputs are the rows q/k/v kept.
  const auto o_w = reg.at("encoder.layer.0.attention.output.dense.weight").value.to_floats();
  std::vector<double> orow(size_t(C), 0);
  for (int r = 0; r < C; ++r)
    for (int j : rows) orow[size_t(r)] += std::fabs(o_w[size_t(r) * C + j]);
  const auto orows = top(orow, c);
  const auto so = reg.at("side.layer.0.attention.output.dense.weight").value.to_floats();
  for (int a = 0; a < c; ++a)
    for (int b = 0; b < c; ++b) ASSERT_EQ(so[size_t(a) * c + b], o_w[size_t(orows[size_t(a)]) * C + rows[size_t(b)]]);
}

// Training from an activation store loads the backbone without its weights (WeightValues::deferred): the
// pruned initialisation then reads them one tensor at a time and must give the same side network.
TEST(Lst, PrunedInitFromADeferredBackboneEqualsTheMappedOne) {
  const std::string dir = test::write_tiny_bert(test::temp_dir("lst_deferred_init"), 63);
  adapters::LstOptions o;
  o.reduction = 2;
  o.init = "magnitude";
  auto mapped = core::load_backbone(dir);
  auto deferred = core::load_backbone(dir, nullptr, core::WeightValues::deferred);
  adapters::LstSideNetwork a(*mapped, o), b(*deferred, o);
  size_t side_params = 0;
  for (auto& p : mapped->params().all()) {
    if (!p->trainable) continue;
    ++side_params;
    EXPECT_EQ(p->value.to_floats(), deferred->params().at(p->name).value.to_floats()) << p->name;
  }
  EXPECT_GT(side_params, 10u);
}

TEST(Lst, BadOptionsAreClearErrors) {
  auto bb = test::tiny_backbone(false, "lst_errors", 62);
  auto error_of = [&](adapters::LstOptions o) {
    try {
      adapters::LstSideNetwork s(*bb, o);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  adapters::LstOptions o;
  o.reduction = 3;  // hidden 16
  EXPECT_NE(error_of(o).find("lst_reduction = 3"), std::string::npos) << error_of(o);
  o.reduction = 2;
  o.layers = {5};
  EXPECT_NE(error_of(o).find("layer 5 is not in 0..1"), std::string::npos) << error_of(o);
  o.layers = {};
  o.init = "fisher";
  EXPECT_NE(error_of(o).find("Fisher"), std::string::npos) << error_of(o);
  o.init = "pruned";
  EXPECT_NE(error_of(o).find("expected magnitude, fisher or random"), std::string::npos) << error_of(o);
}

TEST(Lst, RecomputedBlocksGiveTheSavedBlocksGradients) {
  // Backward recomputes the side blocks (and their softmax) by default, or only the softmax; keeping
  // everything must give the same gradients bit for bit (same kernels, same inputs, same dropout masks:
  // dropout is on), and each mode that recomputes more must keep less.
  for (bool gpt : {false, true}) {
    adapters::LstOptions o;
    o.reduction = 2;
    o.init = "random";  // (pruned init is BERT-only)
    std::vector<std::vector<float>> grads;
    std::vector<size_t> kept;
    auto& mem = core::MemoryTracker::instance();
    for (const char* mode : {"blocks", "softmax", "none"}) {
      Rig rig(gpt, std::string("lst_recompute_") + (gpt ? "gpt_" : "bert_") + mode, o);
      rig.side->set_recompute(adapters::parse_lst_recompute(mode));
      const auto R = test::randn(size_t(rig.tb.B) * rig.bb->config().hidden, 13);
      rig.bb->params().zero_grad();
      const size_t before = mem.current(0, core::MemCategory::activations);
      rig.run(true);
      kept.push_back(mem.current(0, core::MemCategory::activations) - before);
      rig.side->backward(R.data());
      grads.push_back(rig.bb->params().gradient_buffer().to_floats());
    }
    EXPECT_LT(kept[0], kept[1]) << "recomputing blocks must keep less than recomputing the softmax";
    EXPECT_LT(kept[1], kept[2]) << "recomputing the softmax must keep less than recomputing nothing";
    double norm = 0;
    for (size_t m = 1; m < grads.size(); ++m) {
      ASSERT_EQ(grads[0].size(), grads[m].size());
      for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_EQ(grads[0][i], grads[m][i]) << (gpt ? "gpt2 " : "bert ") << m << " " << i;
    }
    for (float g : grads[0]) norm += double(g) * g;
    EXPECT_GT(norm, 0.0);
  }
}

TEST(Lst, SixteenBitTapsEqualTheirF32Values) {
  // Taps may be f16 or bf16 (the store's precision, online too): the ladders convert them in chunks of rows
  // for their GEMMs, which must give what the same values in f32 give (up to summation order), here with
  // more rows than one chunk.
  for (core::DType dt : {core::DType::f16, core::DType::bf16}) {
    adapters::LstOptions o;
    o.reduction = 2;
    o.init = "random";
    Rig rig(false, std::string("lst_taps16_") + core::dtype_name(dt), o);
    const int B = 20, T = 31, C = rig.bb->config().hidden, N = B * T;
    std::vector<int32_t> ids(size_t(N), 5);
    std::vector<float> mask(size_t(N), 1.0f);
    for (int t = 20; t < T; ++t) mask[size_t(3) * T + t] = 0.0f;  // one padded row
    const core::TokenBatch b{B, T, ids.data(), nullptr, mask.data()};
    std::vector<std::vector<uint16_t>> bits;
    std::vector<std::vector<float>> vals;
    for (size_t j = 0; j < rig.side->taps().size(); ++j) {
      auto x = test::randn(size_t(N) * C, 90 + int(j));
      bits.emplace_back(x.size());
      core::convert_from_f32(dt, x.data(), bits.back().data(), x.size());
      vals.emplace_back(x.size());
      core::convert_to_f32(dt, bits.back().data(), vals.back().data(), x.size());
    }
    std::vector<std::vector<float>> feats, grads;
    for (bool sixteen : {false, true}) {
      std::vector<adapters::TapRows> taps;
      for (size_t j = 0; j < bits.size(); ++j)
        taps.push_back(sixteen ? adapters::TapRows{bits[j].data(), dt} : adapters::TapRows{vals[j].data(), core::DType::f32});
      core::StepOptions so;
      so.save_for_backward = true;
      so.training = true;
      so.seed = 5;
      rig.bb->params().zero_grad();
      feats.push_back(rig.side->forward(taps, b, so).to_floats());
      const auto R = test::randn(size_t(B) * C, 17);
      rig.side->backward(R.data());
      grads.push_back(rig.bb->params().gradient_buffer().to_floats());
    }
    for (size_t i = 0; i < feats[0].size(); ++i) ASSERT_NEAR(feats[0][i], feats[1][i], 1e-5) << "feature " << i;
    double norm = 0;
    for (size_t i = 0; i < grads[0].size(); ++i) {
      ASSERT_NEAR(grads[0][i], grads[1][i], 1e-4 * (1.0 + std::fabs(grads[0][i]))) << "gradient " << i;
      norm += double(grads[0][i]) * grads[0][i];
    }
    EXPECT_GT(norm, 0.0);
  }
}
