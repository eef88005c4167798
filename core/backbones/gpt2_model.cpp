#include "core/backbones/gpt2_model.h"

#include <algorithm>
#include <stdexcept>

#include "core/backbones/gradient_floor.h"
#include "core/backbones/tensor_parallel_layout.h"
#include "core/backbones/weight_loader.h"
#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"
#include "core/kernels/embedding.h"
#include "core/kernels/gemm.h"

namespace ladder::core {

namespace {
constexpr uint64_t kEmbeddingSite = 1000;
}

Gpt2Model::Gpt2Model(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp,
                      WeightValues values)
    : cfg_(cfg), tp_(tp && tp->size() > 1 ? tp : nullptr), deferred_(values == WeightValues::deferred) {
  const int C = cfg.hidden, F = cfg.intermediate;
  if (F < C) throw std::runtime_error("GPT-2 with n_inner < n_embd is not supported");
  const TensorParallelLayout tpl(cfg, tp_);
  WeightLoader w(ckpt, reg_, {"transformer."}, values);
  wte_ = w.load_shard("wte.weight", tpl.spec({cfg.vocab_size, C}, 0));
  wte_row0_ = int(wte_->shard.range().first);
  wpe_ = w.load("wpe.weight", {cfg.max_positions, C});
  // Conv1D weights are stored [in, out]: column-parallel cuts dim 1 (c_attn's in its q | k | v blocks),
  // row-parallel dim 0 (contiguous rows of the mapping).
  auto column = [&](const std::string& p, int in, int out, int blocks) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({in, out}, 1, blocks)), w.load_shard(p + ".bias", tpl.spec({out}, 0, blocks)),
             in, tpl.local(out), WeightLayout::in_out};
    tpl.mark(l, Linear::Parallel::column);
    return l;
  };
  auto row = [&](const std::string& p, int in, int out) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({in, out}, 0)), w.load(p + ".bias", {out}), tpl.local(in), out,
             WeightLayout::in_out};
    tpl.mark(l, Linear::Parallel::row);
    return l;
  };
  auto layer_norm = [&](const std::string& p) {
    return LayerNorm{w.load(p + ".weight", {C}), w.load(p + ".bias", {C}), C, cfg.layer_norm_eps};
  };
  for (int i = 0; i < cfg.layers; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    Gpt2Block blk;
    blk.ln1 = layer_norm(p + "ln_1");
    blk.attn.qkv = column(p + "attn.c_attn", C, 3 * C, 3);
    blk.attn.fused = true;
    blk.attn.out = row(p + "attn.c_proj", C, C);
    blk.attn.C = C;
    tpl.place_heads(blk.attn);
    blk.attn.causal = true;
    blk.attn.dropout_p = cfg.attn_dropout;
    blk.attn.key_positions = cfg.max_positions;
    blk.ln2 = layer_norm(p + "ln_2");
    blk.fc = column(p + "mlp.c_fc", C, F, 1);
    blk.proj = row(p + "mlp.c_proj", F, C);
    blk.gelu = cfg.gelu;
    blk.resid_dropout = cfg.hidden_dropout;
    blk.layer_index = i;
    blk.max_positions = cfg.max_positions;
    blocks_.push_back(blk);
  }
  ln_f_ = layer_norm("ln_f");
}

Tensor Gpt2Model::hidden_state(int i) const {
  if (i < 0 || i > cfg_.layers) throw std::out_of_range("hidden_state " + std::to_string(i) + " of a " + std::to_string(cfg_.layers) + "-layer model");
  if (i == cfg_.layers) return final_;
  if (!keep_all_) throw std::logic_error("hidden_state(" + std::to_string(i) + ") needs a forward with keep_hidden_states or save_for_backward");
  return stream_[block_slot(i)];
}

void Gpt2Model::forward(const TokenBatch& b, const StepOptions& opt) {
  if (deferred_) throw std::logic_error("this GPT-2 backbone was loaded without its weights (WeightValues::deferred): it cannot run");
  batch_ = b;
  opt_ = opt;
  keep_all_ = opt.save_for_backward || opt.keep_hidden_states;
  const int N = b.rows(), C = cfg_.hidden, L = cfg_.layers;
  if (b.T > cfg_.max_positions)
    throw std::invalid_argument("sequence length " + std::to_string(b.T) + " exceeds n_positions " + std::to_string(cfg_.max_positions));
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  floor_ = opt.save_for_backward ? gradient_floor(reg_, "h.", {"wte.", "wpe.", "prompt_embeddings."}, L) : L;
  if (bufs_.size() < size_t(L)) bufs_.resize(size_t(L));
  const size_t nstream = keep_all_ ? size_t(L + 1) : 2;
  if (stream_.size() < nstream) stream_.resize(nstream);
  // stream_[i] is block i's input (ln_1's input: always read by a block that runs backward) and
  // stream_[L] is ln_f's input.
  for (size_t i = 0; i < nstream; ++i)
    Tensor::ensure(stream_[i], {N, C}, DType::f32,
                   opt.save_for_backward && int(i) >= floor_ ? MemCategory::activations : MemCategory::workspace);
  Tensor::ensure(final_, {N, C}, DType::f32, cat);
  Tensor::ensure(lnf_mean_, {N}, DType::f32, cat);
  Tensor::ensure(lnf_rstd_, {N}, DType::f32, cat);
  Tensor::ensure(pos_ids_, {N}, DType::i32, MemCategory::workspace);
  int32_t* pos = pos_ids_.data<int32_t>();
  for (int n = 0; n < N; ++n) pos[n] = n % b.T;

  float* h0 = stream_[0].data<float>();
  TokenEmbedding{wte_, prompt_, cfg_.vocab_size, C, wte_row0_, tp_}.forward(h0, b.input_ids, N, false);
  embedding_forward(h0, pos, wpe_->w(), N, C, cfg_.max_positions, true);
  if (opt.training && cfg_.embd_dropout > 0)
    sequence_dropout_forward(h0, h0, b, C, cfg_.max_positions, cfg_.embd_dropout, derive_seed(opt.seed, kEmbeddingSite),
                             opt.samples);
  for (int i = 0; i < L; ++i) {
    const bool save = opt.save_for_backward && i >= floor_;
    blocks_[i].forward(stream_[block_slot(i + 1)].data<float>(), stream_[block_slot(i)].data<float>(),
                       save ? bufs_[size_t(i)] : scratch_, scratch_, save, b, opt);
  }
  ln_f_.forward(final_.data<float>(), lnf_mean_.data<float>(), lnf_rstd_.data<float>(),
                stream_[block_slot(L)].data<float>(), N);
}

void Gpt2Model::lm_logits(Tensor& logits) const {
  if (tp_) throw std::logic_error("GPT-2's tied LM head is not supported with a vocabulary-parallel wte (parallel.tp > 1)");
  const int N = batch_.rows(), C = cfg_.hidden, V = cfg_.vocab_size;
  Tensor::ensure(logits, {N, V}, DType::f32, opt_.save_for_backward ? MemCategory::activations : MemCategory::workspace);
  gemm(false, true, N, V, C, 1.0f, final_.data<float>(), C, wte_->w(), C, 0.0f, logits.data<float>(), V);
}

void Gpt2Model::backward_from_logits(const float* dlogits, const std::vector<const float*>& d_hidden) {
  if (tp_) throw std::logic_error("GPT-2's tied LM head is not supported with a vocabulary-parallel wte (parallel.tp > 1)");
  const int N = batch_.rows(), C = cfg_.hidden, V = cfg_.vocab_size;
  Tensor::ensure(d_final_, {N, C}, DType::f32, MemCategory::workspace);
  // d(final) = dlogits wte ; d(wte) += dlogits^T final (tied head)
  gemm(false, false, N, C, V, 1.0f, dlogits, V, wte_->w(), C, 0.0f, d_final_.data<float>(), C);
  if (wte_->trainable) gemm(true, false, V, C, N, 1.0f, dlogits, V, final_.data<float>(), C, 1.0f, wte_->g(), C);
  backward(d_final_.data<float>(), d_hidden);
}

void Gpt2Model::backward(const float* d_last, const std::vector<const float*>& d_hidden) {
  if (!opt_.save_for_backward) throw std::logic_error("Gpt2Model::backward needs a forward with save_for_backward");
  const TokenBatch& b = batch_;
  const int N = b.rows(), C = cfg_.hidden, L = cfg_.layers;
  const size_t NC = size_t(N) * C;
  if (!d_hidden.empty() && d_hidden.size() != size_t(L + 1))
    throw std::invalid_argument("d_hidden needs " + std::to_string(L + 1) + " entries");
  ws_.ensure(b, C, cfg_.intermediate, cfg_.heads, tp_ != nullptr);
  Tensor::ensure(d_cur_, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_next_, {N, C}, DType::f32, MemCategory::workspace);
  float* dfin = d_next_.data<float>();
  if (d_last) std::copy(d_last, d_last + NC, dfin);
  else std::fill(dfin, dfin + NC, 0.0f);
  if (!d_hidden.empty() && d_hidden[L]) add_inplace(dfin, d_hidden[L], NC);
  ln_f_.backward(d_cur_.data<float>(), dfin, stream_[L].data<float>(), lnf_mean_.data<float>(), lnf_rstd_.data<float>(), N);

  for (int i = L - 1; i >= std::max(floor_, 0); --i) {
    float* dx = d_next_.data<float>();
    blocks_[i].backward(dx, d_cur_.data<float>(), stream_[i].data<float>(), bufs_[i], b, opt_, ws_);
    if (!d_hidden.empty() && d_hidden[i]) add_inplace(dx, d_hidden[i], NC);
    layer_backward_done(i);
    std::swap(d_cur_, d_next_);
  }
  if (floor_ >= 0) return;  // (a trainable prompt table is registered as an embedding: floor -1)
  float* d = d_cur_.data<float>();
  if (opt_.training && cfg_.embd_dropout > 0)
    sequence_dropout_backward(d, d, b, C, cfg_.max_positions, cfg_.embd_dropout, derive_seed(opt_.seed, kEmbeddingSite),
                              opt_.samples);
  TokenEmbedding{wte_, prompt_, cfg_.vocab_size, C, wte_row0_, tp_}.backward(d, b.input_ids, N);
  if (wpe_->trainable) embedding_backward(wpe_->g(), d, pos_ids_.data<int32_t>(), N, C);
}

std::vector<std::pair<std::string, Linear*>> Gpt2Model::linear_modules() {
  std::vector<std::pair<std::string, Linear*>> out;
  for (auto& blk : blocks_) {
    const std::string p = "h." + std::to_string(blk.layer_index) + ".";
    out.emplace_back(p + "attn.c_attn", &blk.attn.qkv);
    out.emplace_back(p + "attn.c_proj", &blk.attn.out);
    out.emplace_back(p + "mlp.c_fc", &blk.fc);
    out.emplace_back(p + "mlp.c_proj", &blk.proj);
  }
  return out;
}

double Gpt2Model::forward_flops(int B, int T) const {
  TokenBatch b;
  b.B = B;
  b.T = T;
  double f = 0;
  for (auto& blk : blocks_) f += blk.flops(b);
  return f;
}

}  // namespace ladder::core
