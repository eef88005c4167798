#include "core/backbones/bert_model.h"

#include <algorithm>
#include <stdexcept>

#include "core/backbones/gradient_floor.h"
#include "core/backbones/tensor_parallel_layout.h"
#include "core/backbones/weight_loader.h"
#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"
#include "core/kernels/embedding.h"

namespace ladder::core {

namespace {
constexpr uint64_t kEmbeddingSite = 1000;  // dropout stream of the embeddings (layers use their index)
}

BertModel::BertModel(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp,
                      WeightValues values)
    : cfg_(cfg), tp_(tp && tp->size() > 1 ? tp : nullptr), deferred_(values == WeightValues::deferred) {
  const int C = cfg.hidden, F = cfg.intermediate;
  const TensorParallelLayout tpl(cfg, tp_);
  WeightLoader w(ckpt, reg_, {"bert."}, values);
  Parameter* word = w.load_shard("embeddings.word_embeddings.weight", tpl.spec({cfg.vocab_size, C}, 0));
  word_ = {word, nullptr, cfg.vocab_size, C, int(word->shard.range().first), tp_};
  pos_ = w.load("embeddings.position_embeddings.weight", {cfg.max_positions, C});
  type_ = w.load("embeddings.token_type_embeddings.weight", {cfg.type_vocab_size, C});
  emb_ln_ = {w.load("embeddings.LayerNorm.weight", {C}), w.load("embeddings.LayerNorm.bias", {C}), C, cfg.layer_norm_eps};
  auto linear = [&](const std::string& p, int in, int out) {
    return Linear{w.load(p + ".weight", {out, in}), w.load(p + ".bias", {out}), in, out, WeightLayout::out_in};
  };
  // Megatron's split: Q, K, V and the FFN's first Linear by output rows (heads / FFN columns), the
  // attention output and the FFN's second Linear by input columns.
  auto column = [&](const std::string& p, int in, int out) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({out, in}, 0)), w.load_shard(p + ".bias", tpl.spec({out}, 0)), in,
             tpl.local(out), WeightLayout::out_in};
    tpl.mark(l, Linear::Parallel::column);
    return l;
  };
  auto row = [&](const std::string& p, int in, int out) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({out, in}, 1)), w.load(p + ".bias", {out}), tpl.local(in), out,
             WeightLayout::out_in};
    tpl.mark(l, Linear::Parallel::row);
    return l;
  };
  auto layer_norm = [&](const std::string& p) {
    return LayerNorm{w.load(p + ".weight", {C}), w.load(p + ".bias", {C}), C, cfg.layer_norm_eps};
  };
  for (int i = 0; i < cfg.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    BertLayer l;
    l.attn.query = column(p + "attention.self.query", C, C);
    l.attn.key = column(p + "attention.self.key", C, C);
    l.attn.value = column(p + "attention.self.value", C, C);
    l.attn.out = row(p + "attention.output.dense", C, C);
    l.attn.C = C;
    tpl.place_heads(l.attn);
    l.attn.dropout_p = cfg.attn_dropout;
    l.attn.key_positions = cfg.max_positions;
    l.ln1 = layer_norm(p + "attention.output.LayerNorm");
    l.ffn_in = column(p + "intermediate.dense", C, F);
    l.ffn_out = row(p + "output.dense", F, C);
    l.ln2 = layer_norm(p + "output.LayerNorm");
    l.gelu = cfg.gelu;
    l.hidden_dropout = cfg.hidden_dropout;
    l.layer_index = i;
    l.max_positions = cfg.max_positions;
    layers_.push_back(l);
  }
  // The pooler is optional: some checkpoints (e.g. exported without add_pooling_layer) lack it. It is
  // replicated (one [d, d] matrix on [CLS] rows: splitting it would cost a collective for nothing).
  if (w.has("pooler.dense.weight")) pooler_ = linear("pooler.dense", C, C);
}

Tensor BertModel::hidden_state(int i) const {
  if (i < 0 || i > cfg_.layers) throw std::out_of_range("hidden_state " + std::to_string(i) + " of a " + std::to_string(cfg_.layers) + "-layer model");
  if (!keep_all_ && i != cfg_.layers)
    throw std::logic_error("hidden_state(" + std::to_string(i) + ") needs a forward with keep_hidden_states or save_for_backward");
  if (i == cfg_.layers && opt_.first_token_only)
    throw std::logic_error("the last hidden state is not computed by a forward with first_token_only (only pooled() is)");
  return hidden_[hidden_slot(i)];
}

void BertModel::embeddings_forward() {
  const TokenBatch& b = batch_;
  const int N = b.rows(), C = cfg_.hidden;
  const MemCategory cat = opt_.save_for_backward && floor_ < 0 ? MemCategory::activations : MemCategory::workspace;
  if (b.T > cfg_.max_positions)
    throw std::invalid_argument("sequence length " + std::to_string(b.T) + " exceeds max_position_embeddings " +
                                std::to_string(cfg_.max_positions));
  Tensor::ensure(pos_ids_, {N}, DType::i32, MemCategory::workspace);
  Tensor::ensure(type_ids_, {N}, DType::i32, MemCategory::workspace);
  int32_t* pos = pos_ids_.data<int32_t>();
  for (int n = 0; n < N; ++n) pos[n] = n % b.T;
  const int32_t* types = b.token_type_ids;
  if (!types) {
    type_ids_.zero_();
    types = type_ids_.data<int32_t>();
  }
  Tensor::ensure(emb_sum_, {N, C}, DType::f32, cat);
  Tensor::ensure(emb_mean_, {N}, DType::f32, cat);
  Tensor::ensure(emb_rstd_, {N}, DType::f32, cat);
  float* e = emb_sum_.data<float>();
  word_.forward(e, b.input_ids, N, false);
  embedding_forward(e, pos, pos_->w(), N, C, cfg_.max_positions, true);
  embedding_forward(e, types, type_->w(), N, C, cfg_.type_vocab_size, true);
  float* h0 = hidden_[0].data<float>();
  emb_ln_.forward(h0, emb_mean_.data<float>(), emb_rstd_.data<float>(), e, N);
  if (opt_.training && cfg_.embd_dropout > 0)
    sequence_dropout_forward(h0, h0, b, C, cfg_.max_positions, cfg_.embd_dropout,
                             derive_seed(opt_.seed, kEmbeddingSite), opt_.samples);
}

void BertModel::forward(const TokenBatch& batch, const StepOptions& opt) {
  if (deferred_) throw std::logic_error("this BERT backbone was loaded without its weights (WeightValues::deferred): it cannot run");
  batch_ = batch;
  opt_ = opt;
  keep_all_ = opt.save_for_backward || opt.keep_hidden_states;
  const int N = batch.rows(), C = cfg_.hidden, L = cfg_.layers;
  floor_ = opt.save_for_backward ? gradient_floor(reg_, "encoder.layer.", {"embeddings.", "prompt_embeddings."}, L) : L;
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  if (bufs_.size() < size_t(L)) bufs_.resize(size_t(L));
  const size_t nhid = keep_all_ ? size_t(L + 1) : 2;
  if (hidden_.size() < nhid) hidden_.resize(nhid);
  // A layer's input is saved when that layer runs backward (its Q/K/V may need it).
  for (size_t i = 0; i < nhid; ++i)
    Tensor::ensure(hidden_[i], {N, C}, DType::f32,
                   opt.save_for_backward && int(i) >= floor_ && int(i) < L ? MemCategory::activations : MemCategory::workspace);

  if (opt.first_token_only && !has_pooler())
    throw std::logic_error("first_token_only is for the pooler, and this checkpoint has none");
  if (opt.first_token_only) Tensor::ensure(cls_, {batch.B, C}, DType::f32, cat);

  embeddings_forward();
  for (int i = 0; i < L; ++i) {
    const bool save = opt.save_for_backward && i >= floor_;
    // With first_token_only the last layer writes only the CLS rows, straight into the pooler's input.
    const bool first_only = opt.first_token_only && i == L - 1;
    layers_[i].forward(first_only ? cls_.data<float>() : hidden_[hidden_slot(i + 1)].data<float>(),
                       hidden_[hidden_slot(i)].data<float>(), save ? bufs_[size_t(i)] : scratch_, scratch_, save, batch,
                       opt, first_only);
  }
  if (has_pooler()) {
    Tensor::ensure(cls_, {batch.B, C}, DType::f32, cat);
    Tensor::ensure(pooled_, {batch.B, C}, DType::f32, cat);
    float* cls = cls_.data<float>();
    if (!opt.first_token_only) {
      const float* last = hidden_[hidden_slot(L)].data<float>();
      for (int b = 0; b < batch.B; ++b) std::copy(last + size_t(b) * batch.T * C, last + size_t(b) * batch.T * C + C, cls + size_t(b) * C);
    }
    pooler_.forward(pooled_.data<float>(), cls, batch.B);
    tanh_forward(pooled_.data<float>(), pooled_.data<float>(), size_t(batch.B) * C);
  }
}

void BertModel::backward(const float* d_last, const float* d_pooled, const std::vector<const float*>& d_hidden) {
  if (!opt_.save_for_backward) throw std::logic_error("BertModel::backward needs a forward with save_for_backward");
  const TokenBatch& b = batch_;
  const int N = b.rows(), C = cfg_.hidden, L = cfg_.layers;
  const size_t NC = size_t(N) * C;
  if (!d_hidden.empty() && d_hidden.size() != size_t(L + 1))
    throw std::invalid_argument("d_hidden needs " + std::to_string(L + 1) + " entries");
  ws_.ensure(b, C, cfg_.intermediate, cfg_.heads, tp_ != nullptr);
  Tensor::ensure(d_cur_, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_next_, {N, C}, DType::f32, MemCategory::workspace);
  // With first_token_only the top gradient is [B, C] (the CLS rows), in d_cur_'s first rows.
  const bool first_only = opt_.first_token_only;
  const size_t top = first_only ? size_t(b.B) * C : NC;
  float* d = d_cur_.data<float>();
  std::fill(d, d + top, 0.0f);
  auto add_top = [&](const float* g) {
    if (!first_only) return add_inplace(d, g, NC);
    for (int r = 0; r < b.B; ++r) add_inplace(d + size_t(r) * C, g + size_t(r) * b.T * C, size_t(C));
  };
  if (d_last) add_top(d_last);
  if (!d_hidden.empty() && d_hidden[L]) add_top(d_hidden[L]);

  if (d_pooled) {
    if (!has_pooler()) throw std::logic_error("d_pooled given but the checkpoint has no pooler");
    Tensor::ensure(d_cls_, {b.B, C}, DType::f32, MemCategory::workspace);
    float* dpre = d_cls_.data<float>();
    tanh_backward(dpre, d_pooled, pooled_.data<float>(), size_t(b.B) * C);
    // d(cls) goes to the scratch row block, then into the CLS rows of d.
    float* dcls = ws_.d_a.data<float>();
    pooler_.backward(dcls, dpre, cls_.data<float>(), b.B);
    for (int r = 0; r < b.B; ++r) add_inplace(d + size_t(r) * (first_only ? 1 : b.T) * C, dcls + size_t(r) * C, C);
  }

  for (int i = L - 1; i >= std::max(floor_, 0); --i) {
    // The lowest layer that runs backward computes no input gradient unless the embeddings learn: its
    // Q/K/V input-gradient GEMMs would feed nothing.
    float* dx = i > floor_ ? d_next_.data<float>() : nullptr;
    layers_[i].backward(dx, d_cur_.data<float>(), hidden_[i].data<float>(), bufs_[i], b, opt_, ws_,
                        first_only && i == L - 1);
    if (dx && !d_hidden.empty() && d_hidden[i]) add_inplace(dx, d_hidden[i], NC);
    layer_backward_done(i);
    std::swap(d_cur_, d_next_);
  }
  if (floor_ < 0) embeddings_backward(d_cur_.data<float>());
}

void BertModel::embeddings_backward(const float* d_h0) {
  const bool any = word_.trainable() || pos_->trainable || type_->trainable || emb_ln_.weight->trainable ||
                   emb_ln_.bias->trainable;
  if (!any) return;
  const TokenBatch& b = batch_;
  const int N = b.rows(), C = cfg_.hidden;
  float* d = d_next_.data<float>();
  std::copy(d_h0, d_h0 + size_t(N) * C, d);
  if (opt_.training && cfg_.embd_dropout > 0)
    sequence_dropout_backward(d, d, b, C, cfg_.max_positions, cfg_.embd_dropout, derive_seed(opt_.seed, kEmbeddingSite),
                              opt_.samples);
  float* de = ws_.d_a.data<float>();
  emb_ln_.backward(de, d, emb_sum_.data<float>(), emb_mean_.data<float>(), emb_rstd_.data<float>(), N);
  word_.backward(de, b.input_ids, N);
  if (pos_->trainable) embedding_backward(pos_->g(), de, pos_ids_.data<int32_t>(), N, C);
  if (type_->trainable)
    embedding_backward(type_->g(), de, b.token_type_ids ? b.token_type_ids : type_ids_.data<int32_t>(), N, C);
}

std::vector<std::pair<std::string, Linear*>> BertModel::linear_modules() {
  std::vector<std::pair<std::string, Linear*>> out;
  for (auto& l : layers_) {
    const std::string p = "encoder.layer." + std::to_string(l.layer_index) + ".";
    out.emplace_back(p + "attention.self.query", &l.attn.query);
    out.emplace_back(p + "attention.self.key", &l.attn.key);
    out.emplace_back(p + "attention.self.value", &l.attn.value);
    out.emplace_back(p + "attention.output.dense", &l.attn.out);
    out.emplace_back(p + "intermediate.dense", &l.ffn_in);
    out.emplace_back(p + "output.dense", &l.ffn_out);
  }
  return out;
}

double BertModel::forward_flops(int B, int T) const {
  TokenBatch b;
  b.B = B;
  b.T = T;
  double f = 0;
  for (auto& l : layers_) f += l.flops(b);
  return f;
}

}  // namespace ladder::core
