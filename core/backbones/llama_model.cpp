#include "core/backbones/llama_model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/backbones/gradient_floor.h"
#include "core/backbones/tensor_parallel_layout.h"
#include "core/backbones/weight_loader.h"
#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"
#include "core/kernels/losses.h"

namespace ladder::core {

LlamaModel::LlamaModel(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp,
                       WeightValues values)
    : cfg_(cfg), tp_(tp && tp->size() > 1 ? tp : nullptr), deferred_(values == WeightValues::deferred) {
  validate_llama_family(cfg, ckpt.dir());
  const int C = cfg.hidden, F = cfg.intermediate, HS = cfg.head_size(), NH = cfg.heads, KVH = cfg.kv_head_count();
  const TensorParallelLayout tpl(cfg, tp_);
  if (KVH % tpl.size())
    throw std::invalid_argument("parallel.tp = " + std::to_string(tpl.size()) + " does not divide the model's " +
                                std::to_string(KVH) + " key/value heads (tensor parallelism splits whole K/V heads)");
  WeightLoader w(ckpt, reg_, {"model."}, values);
  embed_ = w.load_shard("embed_tokens.weight", tpl.spec({cfg.vocab_size, C}, 0));
  embed_row0_ = int(embed_->shard.range().first);
  if (!cfg.tie_word_embeddings) lm_head_ = w.load_shard("lm_head.weight", tpl.spec({cfg.vocab_size, C}, 0));
  auto column = [&](const std::string& p, int in, int out) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({out, in}, 0)), nullptr, in, tpl.local(out), WeightLayout::out_in};
    tpl.mark(l, Linear::Parallel::column);
    return l;
  };
  auto row = [&](const std::string& p, int in, int out) {
    Linear l{w.load_shard(p + ".weight", tpl.spec({out, in}, 1)), nullptr, tpl.local(in), out, WeightLayout::out_in};
    tpl.mark(l, Linear::Parallel::row);
    return l;
  };
  auto rms = [&](const std::string& p, int width) {
    return RmsNorm{w.load(p + ".weight", {width}), width, cfg.rms_norm_eps, cfg.rms_norm_unit_offset};
  };
  for (int i = 0; i < cfg.layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LlamaBlock blk;
    blk.layer_index = i;
    blk.sandwich = cfg.sandwich_norm;
    blk.act = cfg.gate;
    blk.attn_in = rms(p + "input_layernorm", C);
    if (cfg.sandwich_norm) {
      blk.attn_out = rms(p + "post_attention_layernorm", C);
      blk.ffn_in = rms(p + "pre_feedforward_layernorm", C);
      blk.ffn_out = rms(p + "post_feedforward_layernorm", C);
    } else {
      blk.ffn_in = rms(p + "post_attention_layernorm", C);
    }
    GroupedQueryAttention& a = blk.attn;
    a.q = column(p + "self_attn.q_proj", C, NH * HS);
    a.k = column(p + "self_attn.k_proj", C, KVH * HS);
    a.v = column(p + "self_attn.v_proj", C, KVH * HS);
    a.o = row(p + "self_attn.o_proj", NH * HS, C);
    if (cfg.qk_norm) {
      a.qk_norm = true;
      a.q_norm = rms(p + "self_attn.q_norm", HS);
      a.k_norm = rms(p + "self_attn.k_norm", HS);
      // Replicated, but each rank normalises only its own heads: its gradient is a share of the sum.
      a.q_norm.weight->tp_partial_grad = a.k_norm.weight->tp_partial_grad = tpl.size() > 1;
    }
    a.C = C;
    a.HS = HS;
    a.NH = NH / tpl.size();
    a.KVH = KVH / tpl.size();
    a.head0 = tpl.rank() * a.NH;
    a.heads_total = NH;
    a.tp = tpl.size() > 1 ? tp_ : nullptr;
    a.scale = cfg.query_scale > 0 ? cfg.query_scale : 1.0f / std::sqrt(float(HS));
    const bool local = !cfg.layer_is_local.empty() && cfg.layer_is_local[size_t(i)];
    a.window = local ? cfg.sliding_window : 0;
    a.rope = local ? &rope_local_ : &rope_global_;
    a.dropout_p = cfg.attn_dropout;
    a.key_positions = cfg.max_positions;
    blk.gate = column(p + "mlp.gate_proj", C, F);
    blk.up = column(p + "mlp.up_proj", C, F);
    blk.down = row(p + "mlp.down_proj", F, C);
    blocks_.push_back(blk);
  }
  norm_ = rms("norm", C);
}

ClassifierLayout LlamaModel::classifier_layout() const {
  return {"model.", "score",
          cfg_.arch == Architecture::gemma3 ? "Gemma3TextForSequenceClassification" : "LlamaForSequenceClassification",
          /*from_pooler=*/false, /*bias=*/false, /*dropout=*/false};
}

Tensor LlamaModel::hidden_state(int i) const {
  if (i < 0 || i > cfg_.layers) throw std::out_of_range("hidden_state " + std::to_string(i) + " of a " + std::to_string(cfg_.layers) + "-layer model");
  if (i == cfg_.layers) return final_;
  if (!keep_all_) throw std::logic_error("hidden_state(" + std::to_string(i) + ") needs a forward with keep_hidden_states or save_for_backward");
  return stream_[size_t(block_slot(i))];
}

void LlamaModel::forward(const TokenBatch& b, const StepOptions& opt) {
  if (deferred_) throw std::logic_error("this " + name() + " backbone was loaded without its weights (WeightValues::deferred): it cannot run");
  batch_ = b;
  opt_ = opt;
  keep_all_ = opt.save_for_backward || opt.keep_hidden_states;
  const int N = b.rows(), C = cfg_.hidden, L = cfg_.layers;
  if (b.T > cfg_.max_positions)
    throw std::invalid_argument("sequence length " + std::to_string(b.T) + " exceeds the model's context of " +
                                std::to_string(cfg_.max_positions));
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  floor_ = opt.save_for_backward ? gradient_floor(reg_, "layers.", {"embed_tokens.", "prompt_embeddings."}, L) : L;
  rope_global_.ensure(cfg_.head_size(), b.T, cfg_.rope_theta, cfg_.rope_linear_factor);
  rope_local_.ensure(cfg_.head_size(), b.T, cfg_.rope_local_theta > 0 ? cfg_.rope_local_theta : cfg_.rope_theta, 1.0f);
  if (bufs_.size() < size_t(L)) bufs_.resize(size_t(L));
  const size_t nstream = keep_all_ ? size_t(L + 1) : 2;
  if (stream_.size() < nstream) stream_.resize(nstream);
  for (size_t i = 0; i < nstream; ++i)
    Tensor::ensure(stream_[i], {N, C}, DType::f32,
                   opt.save_for_backward && int(i) >= floor_ ? MemCategory::activations : MemCategory::workspace);
  Tensor::ensure(final_, {N, C}, DType::f32, cat);
  Tensor::ensure(norm_rstd_, {N}, DType::f32, cat);
  Tensor::ensure(pos_ids_, {N}, DType::i32, MemCategory::workspace);
  int32_t* pos = pos_ids_.data<int32_t>();
  for (int n = 0; n < N; ++n) pos[n] = n % b.T;  // right padding: every row starts at position 0

  float* h0 = stream_[0].data<float>();
  TokenEmbedding{embed_, prompt_, cfg_.vocab_size, C, embed_row0_, tp_}.forward(h0, b.input_ids, N, false);
  if (cfg_.embedding_scale != 1.0f) scale_inplace(h0, cfg_.embedding_scale, size_t(N) * C);
  for (int i = 0; i < L; ++i) {
    const bool save = opt.save_for_backward && i >= floor_;
    blocks_[size_t(i)].forward(stream_[size_t(block_slot(i + 1))].data<float>(), stream_[size_t(block_slot(i))].data<float>(),
                               pos, save ? bufs_[size_t(i)] : scratch_, scratch_, save, b, opt);
  }
  norm_.forward(final_.data<float>(), norm_rstd_.data<float>(), stream_[size_t(block_slot(L))].data<float>(), N);
}

void LlamaModel::head_forward(float* logits, const float* h, int rows) const {
  const Parameter* W = lm_head_ ? lm_head_ : embed_;
  const int C = cfg_.hidden, V = cfg_.vocab_size;
  if (!tp_) {
    gemm(false, true, rows, V, C, 1.0f, h, C, W->w(), C, 0.0f, logits, V);
    return;
  }
  // Vocabulary-parallel head: this rank's rows of W give its columns of the logits; gathered over the group.
  const ShardSpec& rs = W->shard;
  const int Vl = int(rs.range().second - rs.range().first);
  Tensor local = Tensor::empty({rows, Vl}, DType::f32, MemCategory::workspace);
  gemm(false, true, rows, Vl, C, 1.0f, h, C, W->w(), C, 0.0f, local.data<float>(), Vl);
  ShardSpec cs = rs;
  cs.full = {rows, V};
  cs.dim = 1;
  Tensor whole = gather_from_region(local, cs, tp_, MemCategory::workspace);
  std::copy_n(whole.data<float>(), size_t(rows) * V, logits);
}

void LlamaModel::lm_logits(Tensor& logits) const {
  const int N = batch_.rows();
  Tensor::ensure(logits, {N, cfg_.vocab_size}, DType::f32,
                 opt_.save_for_backward ? MemCategory::activations : MemCategory::workspace);
  head_forward(logits.data<float>(), final_.data<float>(), N);
}

void LlamaModel::backward_from_logits(const float* dlogits, const std::vector<const float*>& d_hidden) {
  const int N = batch_.rows(), C = cfg_.hidden, V = cfg_.vocab_size;
  Parameter* W = lm_head_ ? lm_head_ : embed_;
  const int64_t r0 = tp_ ? W->shard.range().first : 0;
  const int Vl = tp_ ? int(W->shard.range().second - r0) : V;
  Tensor::ensure(d_final_, {N, C}, DType::f32, MemCategory::workspace);
  // d(final) = dlogits[:, mine] W ; dW += dlogits[:, mine]^T final
  gemm(false, false, N, C, Vl, 1.0f, dlogits + r0, V, W->w(), C, 0.0f, d_final_.data<float>(), C);
  if (tp_) copy_to_region_backward(tp_, d_final_.data<float>(), size_t(N) * C);
  if (W->trainable) gemm(true, false, Vl, C, N, 1.0f, dlogits + r0, V, final_.data<float>(), C, 1.0f, W->g(), C);
  backward(d_final_.data<float>(), d_hidden);
}

Backbone::LmLoss LlamaModel::lm_loss(const int32_t* targets, int ignore_index, bool backward_too, float grad_scale) {
  const int N = batch_.rows(), C = cfg_.hidden, V = cfg_.vocab_size;
  if (backward_too && !opt_.save_for_backward) throw std::logic_error(name() + " lm_loss backward needs a forward with save_for_backward");
  long total = 0;
  for (int n = 0; n < N; ++n) total += targets[n] != ignore_index;
  LmLoss r;
  r.count = total;
  if (total == 0) {
    if (backward_too) backward(nullptr);
    return r;
  }
  // Rows per block: about 64 MiB of logits (and their gradient, in place) at a time.
  const int rows = head_block_rows_ > 0 ? std::min(N, head_block_rows_)
                                        : std::max(1, std::min(N, int((size_t(64) << 20) / (sizeof(float) * size_t(V)))));
  Tensor::ensure(chunk_logits_, {rows, V}, DType::f32, MemCategory::workspace);
  if (backward_too) Tensor::ensure(d_final_, {N, C}, DType::f32, MemCategory::workspace);
  Parameter* W = lm_head_ ? lm_head_ : embed_;
  const int64_t r0 = tp_ ? W->shard.range().first : 0;
  const int Vl = tp_ ? int(W->shard.range().second - r0) : V;
  double sum = 0;
  for (int n0 = 0; n0 < N; n0 += rows) {
    const int nr = std::min(rows, N - n0);
    float* lg = chunk_logits_.data<float>();
    const float* h = final_.data<float>() + size_t(n0) * C;
    head_forward(lg, h, nr);
    int cnt = 0;
    const float mean = cross_entropy_forward(lg, targets + n0, nr, V, ignore_index, &cnt);
    sum += double(mean) * cnt;
    if (!backward_too) continue;
    float* dfin = d_final_.data<float>() + size_t(n0) * C;
    if (cnt == 0) {
      std::fill(dfin, dfin + size_t(nr) * C, 0.0f);
      continue;
    }
    // d(mean over all counted rows): this block's gradient of its own mean, times its share.
    cross_entropy_backward(lg, lg, targets + n0, nr, V, ignore_index, grad_scale * float(cnt) / float(total));
    gemm(false, false, nr, C, Vl, 1.0f, lg + r0, V, W->w(), C, 0.0f, dfin, C);
    if (W->trainable) gemm(true, false, Vl, C, nr, 1.0f, lg + r0, V, h, C, 1.0f, W->g(), C);
  }
  r.mean = sum / double(total);
  if (backward_too) {
    if (tp_) copy_to_region_backward(tp_, d_final_.data<float>(), size_t(N) * C);
    backward(d_final_.data<float>());
  }
  return r;
}

void LlamaModel::backward(const float* d_last, const std::vector<const float*>& d_hidden) {
  if (!opt_.save_for_backward) throw std::logic_error(name() + " backward needs a forward with save_for_backward");
  const TokenBatch& b = batch_;
  const int N = b.rows(), C = cfg_.hidden, L = cfg_.layers;
  const size_t NC = size_t(N) * C;
  if (!d_hidden.empty() && d_hidden.size() != size_t(L + 1))
    throw std::invalid_argument("d_hidden needs " + std::to_string(L + 1) + " entries");
  if (!blocks_.empty()) ws_.ensure(blocks_[0], b);
  Tensor::ensure(d_cur_, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_next_, {N, C}, DType::f32, MemCategory::workspace);
  float* dfin = d_next_.data<float>();
  if (d_last) std::copy(d_last, d_last + NC, dfin);
  else std::fill(dfin, dfin + NC, 0.0f);
  if (!d_hidden.empty() && d_hidden[size_t(L)]) add_inplace(dfin, d_hidden[size_t(L)], NC);
  norm_.backward(d_cur_.data<float>(), dfin, stream_[size_t(block_slot(L))].data<float>(), norm_rstd_.data<float>(), N);
  const int32_t* pos = pos_ids_.data<int32_t>();
  for (int i = L - 1; i >= std::max(floor_, 0); --i) {
    float* dx = d_next_.data<float>();
    blocks_[size_t(i)].backward(dx, d_cur_.data<float>(), stream_[size_t(i)].data<float>(), pos, bufs_[size_t(i)], b, opt_, ws_);
    if (!d_hidden.empty() && d_hidden[size_t(i)]) add_inplace(dx, d_hidden[size_t(i)], NC);
    layer_backward_done(i);
    std::swap(d_cur_, d_next_);
  }
  if (floor_ >= 0) return;
  float* d = d_cur_.data<float>();
  if (cfg_.embedding_scale != 1.0f) scale_inplace(d, cfg_.embedding_scale, NC);
  TokenEmbedding{embed_, prompt_, cfg_.vocab_size, C, embed_row0_, tp_}.backward(d, b.input_ids, N);
}

void LlamaModel::begin_decoding(int B, int capacity) {
  if (deferred_) throw std::logic_error("this " + name() + " backbone was loaded without its weights: it cannot run");
  if (capacity > cfg_.max_positions)
    throw std::invalid_argument("decoding capacity " + std::to_string(capacity) + " exceeds the model's context of " +
                                std::to_string(cfg_.max_positions));
  rope_global_.ensure(cfg_.head_size(), capacity, cfg_.rope_theta, cfg_.rope_linear_factor);
  rope_local_.ensure(cfg_.head_size(), capacity, cfg_.rope_local_theta > 0 ? cfg_.rope_local_theta : cfg_.rope_theta, 1.0f);
  cache_.assign(size_t(cfg_.layers), KvCache{});
  for (size_t i = 0; i < cache_.size(); ++i) {
    const int KD = blocks_[i].attn.KD();
    cache_[i].k = Tensor::empty({B, capacity, KD}, DType::f32, MemCategory::activations);
    cache_[i].v = Tensor::empty({B, capacity, KD}, DType::f32, MemCategory::activations);
    cache_[i].B = B;
    cache_[i].capacity = capacity;
  }
}

void LlamaModel::decode(const int32_t* ids, int B, int Tn, Tensor& last_logits) {
  if (cache_.empty()) throw std::logic_error("decode needs begin_decoding first");
  const int N = B * Tn, C = cfg_.hidden;
  Tensor::ensure(dec_a_, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(dec_b_, {N, C}, DType::f32, MemCategory::workspace);
  float* x = dec_a_.data<float>();
  float* y = dec_b_.data<float>();
  TokenEmbedding{embed_, prompt_, cfg_.vocab_size, C, embed_row0_, tp_}.forward(x, ids, N, false);
  if (cfg_.embedding_scale != 1.0f) scale_inplace(x, cfg_.embedding_scale, size_t(N) * C);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i].forward_cached(y, x, B, Tn, cache_[i], scratch_);
    std::swap(x, y);
  }
  Tensor::ensure(dec_final_, {B, C}, DType::f32, MemCategory::workspace);
  float* last = dec_final_.data<float>();
  for (int bb = 0; bb < B; ++bb) std::copy_n(x + (size_t(bb) * Tn + Tn - 1) * C, C, last + size_t(bb) * C);
  norm_.forward(last, nullptr, last, B);
  Tensor::ensure(last_logits, {B, cfg_.vocab_size}, DType::f32, MemCategory::workspace);
  head_forward(last_logits.data<float>(), last, B);
}

std::vector<std::pair<std::string, Linear*>> LlamaModel::linear_modules() {
  std::vector<std::pair<std::string, Linear*>> out;
  for (auto& s : layer_seams())
    for (auto& l : s.linears) out.emplace_back(l.name, l.linear);
  return out;
}

std::vector<LayerSeams> LlamaModel::layer_seams() {
  std::vector<LayerSeams> out;
  for (auto& blk : blocks_) {
    LayerSeams s;
    s.index = blk.layer_index;
    s.prefix = "layers." + std::to_string(blk.layer_index);
    s.attn_site = s.prefix + ".self_attn";
    s.ffn_site = s.prefix + ".mlp";
    s.block_site = s.prefix + ".mlp";
    s.after_attention = &blk.after_attention;
    s.after_ffn = &blk.after_ffn;
    s.ffn_parallel = &blk.ffn_parallel;
    const std::string p = s.prefix + ".";
    s.linears = {{LinearRole::query, p + "self_attn.q_proj", &blk.attn.q},
                 {LinearRole::key, p + "self_attn.k_proj", &blk.attn.k},
                 {LinearRole::value, p + "self_attn.v_proj", &blk.attn.v},
                 {LinearRole::attention_output, p + "self_attn.o_proj", &blk.attn.o},
                 {LinearRole::ffn_in, p + "mlp.gate_proj", &blk.gate},
                 {LinearRole::ffn_in, p + "mlp.up_proj", &blk.up},
                 {LinearRole::ffn_out, p + "mlp.down_proj", &blk.down}};
    out.push_back(std::move(s));
  }
  return out;
}

double LlamaModel::forward_flops(int B, int T) const {
  TokenBatch b;
  b.B = B;
  b.T = T;
  double f = 0;
  for (auto& blk : blocks_) f += blk.flops(b);
  return f;
}

}  // namespace ladder::core
