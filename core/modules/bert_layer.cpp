#include "core/modules/bert_layer.h"

#include <algorithm>

#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"
#include "core/modules/activation_slot.h"

namespace ladder::core {

namespace {
// Dropout streams per layer and site, so no two sites share a mask.
enum Site : uint64_t { kAttnProbs = 1, kAttnOut = 2, kFfnOut = 3 };
}  // namespace

void BertLayer::forward(float* out, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
                        const StepOptions& opt, bool first_token_only) const {
  // rb: the rows after attention (every token, or the first of each sequence).
  const TokenBatch rb = first_token_only ? first_token_rows(b) : b;
  const int N = rb.rows(), C = attn.C, F = ffn_in.out;
  const bool drop = opt.training;
  // Backward reads the LayerNorm inputs and statistics and GELU's input; h1 and the GELU output only as
  // inputs of trainable Linears.
  float* h1_pre = activation_slot(save, saved.h1_pre, scratch.h1_pre, {N, C}).data<float>();
  float* ln1_mean = activation_slot(save, saved.ln1_mean, scratch.ln1_mean, {N}).data<float>();
  float* ln1_rstd = activation_slot(save, saved.ln1_rstd, scratch.ln1_rstd, {N}).data<float>();
  const bool keep_h1 = ffn_in.needs_input() || (ffn_parallel && ffn_parallel->needs_input());
  float* h1 = activation_slot(save && keep_h1, saved.h1, scratch.h1, {N, C}).data<float>();
  float* ffn_pre = activation_slot(save, saved.ffn_pre, scratch.ffn_pre, {N, F}).data<float>();
  float* ffn_act = activation_slot(save && ffn_out.needs_input(), saved.ffn_act, scratch.ffn_act, {N, F}).data<float>();
  float* h2_pre = activation_slot(save, saved.h2_pre, scratch.h2_pre, {N, C}).data<float>();
  float* ln2_mean = activation_slot(save, saved.ln2_mean, scratch.ln2_mean, {N}).data<float>();
  float* ln2_rstd = activation_slot(save, saved.ln2_rstd, scratch.ln2_rstd, {N}).data<float>();

  const BranchCall attn_call{&opt, save, &b, max_positions};
  const BranchCall call{&opt, save, &rb, max_positions};
  attn.forward(h1_pre, x, saved.attn, scratch.attn, save, b, drop ? attn.dropout_p : 0.0f,
               derive_seed(opt.seed, layer_index, kAttnProbs), opt.samples, &attn_call, first_token_only, &call);
  if (drop && hidden_dropout > 0)
    sequence_dropout_forward(h1_pre, h1_pre, rb, C, max_positions, hidden_dropout,
                             derive_seed(opt.seed, layer_index, kAttnOut), opt.samples);
  if (after_attention) after_attention->forward(h1_pre, N, call);
  if (first_token_only) {
    for (int r = 0; r < b.B; ++r) add_inplace(h1_pre + size_t(r) * C, x + size_t(r) * b.T * C, size_t(C));
  } else {
    add_inplace(h1_pre, x, size_t(N) * C);
  }
  ln1.forward(h1, ln1_mean, ln1_rstd, h1_pre, N);

  ffn_in.forward(ffn_pre, h1, N, 0, 0, &call);
  gelu_forward(ffn_act, ffn_pre, size_t(N) * F, gelu);
  ffn_out.forward(h2_pre, ffn_act, N, 0, 0, &call);
  if (ffn_parallel) ffn_parallel->forward_add(h2_pre, h1, N, C, C, call);
  if (drop && hidden_dropout > 0)
    sequence_dropout_forward(h2_pre, h2_pre, rb, C, max_positions, hidden_dropout,
                             derive_seed(opt.seed, layer_index, kFfnOut), opt.samples);
  if (after_ffn) after_ffn->forward(h2_pre, N, call);
  add_inplace(h2_pre, h1, size_t(N) * C);
  ln2.forward(out, ln2_mean, ln2_rstd, h2_pre, N);
}

void BertLayer::backward(float* dx, const float* dout, const float* x, const Buffers& buf, const TokenBatch& b,
                         const StepOptions& opt, BackwardWorkspace& ws, bool first_token_only) const {
  const TokenBatch rb = first_token_only ? first_token_rows(b) : b;
  const int N = rb.rows(), C = attn.C, F = ffn_in.out;
  const size_t NC = size_t(N) * C;
  const bool drop = opt.training;
  float* d_h2pre = ws.d_a.data<float>();
  float* d_h1 = ws.d_b.data<float>();
  float* d_ffn = ws.d_ffn.data<float>();

  ln2.backward(d_h2pre, dout, buf.h2_pre.data<float>(), buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), N);
  std::copy(d_h2pre, d_h2pre + NC, d_h1);  // residual branch
  if (after_ffn) after_ffn->backward(d_h2pre, N);
  if (drop && hidden_dropout > 0)
    sequence_dropout_backward(d_h2pre, d_h2pre, rb, C, max_positions, hidden_dropout,
                              derive_seed(opt.seed, layer_index, kFfnOut), opt.samples);
  ffn_out.backward(d_ffn, d_h2pre, saved_or_null(buf.ffn_act), N);
  if (ffn_parallel) ffn_parallel->backward(d_h1, d_h2pre, saved_or_null(buf.h1), N, C, C);
  gelu_backward(d_ffn, d_ffn, buf.ffn_pre.data<float>(), size_t(N) * F, gelu);
  if (ffn_in.parallel == Linear::Parallel::column && tp_active(ffn_in.tp)) {
    // This rank's FFN columns give a partial input gradient: reduce it apart from the residual's.
    float* part = ws.d_tp.data<float>();
    ffn_in.backward(part, d_ffn, saved_or_null(buf.h1), N);
    copy_to_region_backward(ffn_in.tp, part, NC);
    add_inplace(d_h1, part, NC);
  } else {
    ffn_in.backward(d_h1, d_ffn, saved_or_null(buf.h1), N, /*accumulate_dx=*/true);
  }

  float* d_h1pre = ws.d_a.data<float>();
  ln1.backward(d_h1pre, d_h1, buf.h1_pre.data<float>(), buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), N);
  if (dx && first_token_only) {  // residual branch: only position 0 of each sequence got a gradient
    std::fill(dx, dx + size_t(b.rows()) * C, 0.0f);
    for (int r = 0; r < b.B; ++r) std::copy(d_h1pre + size_t(r) * C, d_h1pre + size_t(r + 1) * C, dx + size_t(r) * b.T * C);
  } else if (dx) {
    std::copy(d_h1pre, d_h1pre + NC, dx);
  }
  if (after_attention) after_attention->backward(d_h1pre, N);
  if (drop && hidden_dropout > 0)
    sequence_dropout_backward(d_h1pre, d_h1pre, rb, C, max_positions, hidden_dropout,
                              derive_seed(opt.seed, layer_index, kAttnOut), opt.samples);
  attn.backward(dx, d_h1pre, x, buf.attn, b, drop ? attn.dropout_p : 0.0f,
                derive_seed(opt.seed, layer_index, kAttnProbs), opt.samples, ws.d_qkv.data<float>(), ws.scratch.data<float>(),
                /*accumulate_dx=*/true, first_token_only, ws.d_tp.defined() ? ws.d_tp.data<float>() : nullptr);
}

}  // namespace ladder::core
