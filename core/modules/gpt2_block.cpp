#include "core/modules/gpt2_block.h"

#include <algorithm>

#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"
#include "core/modules/activation_slot.h"

namespace ladder::core {

namespace {
enum Site : uint64_t { kAttnProbs = 1, kAttnOut = 2, kMlpOut = 3 };
}  // namespace

void Gpt2Block::forward(float* out, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
                        const StepOptions& opt) const {
  const int N = b.rows(), C = attn.C, F = fc.out;
  const size_t NC = size_t(N) * C;
  const bool drop = opt.training;
  // Backward reads the LayerNorm statistics, the residual `a` (ln_2's input) and GELU's input; the LayerNorm
  // outputs and the GELU output only as inputs of trainable Linears.
  float* ln1o = activation_slot(save && attn.qkv.needs_input(), saved.ln1_out, scratch.ln1_out, {N, C}).data<float>();
  float* ln1_mean = activation_slot(save, saved.ln1_mean, scratch.ln1_mean, {N}).data<float>();
  float* ln1_rstd = activation_slot(save, saved.ln1_rstd, scratch.ln1_rstd, {N}).data<float>();
  float* a = activation_slot(save, saved.a, scratch.a, {N, C}).data<float>();
  const bool keep_ln2o = fc.needs_input() || (ffn_parallel && ffn_parallel->needs_input());
  float* ln2o = activation_slot(save && keep_ln2o, saved.ln2_out, scratch.ln2_out, {N, C}).data<float>();
  float* ln2_mean = activation_slot(save, saved.ln2_mean, scratch.ln2_mean, {N}).data<float>();
  float* ln2_rstd = activation_slot(save, saved.ln2_rstd, scratch.ln2_rstd, {N}).data<float>();
  float* fc_pre = activation_slot(save, saved.fc_pre, scratch.fc_pre, {N, F}).data<float>();
  float* fc_act = activation_slot(save && proj.needs_input(), saved.fc_act, scratch.fc_act, {N, F}).data<float>();

  const BranchCall call{&opt, save, &b, max_positions};
  ln1.forward(ln1o, ln1_mean, ln1_rstd, x, N);
  attn.forward(a, ln1o, saved.attn, scratch.attn, save, b, drop ? attn.dropout_p : 0.0f,
               derive_seed(opt.seed, layer_index, kAttnProbs), opt.samples, &call);
  if (drop && resid_dropout > 0)
    sequence_dropout_forward(a, a, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kAttnOut),
                             opt.samples);
  if (after_attention) after_attention->forward(a, N, call);
  add_inplace(a, x, NC);

  ln2.forward(ln2o, ln2_mean, ln2_rstd, a, N);
  fc.forward(fc_pre, ln2o, N, 0, 0, &call);
  gelu_forward(fc_act, fc_pre, size_t(N) * F, gelu);
  proj.forward(out, fc_act, N, 0, 0, &call);
  if (ffn_parallel) ffn_parallel->forward_add(out, ln2o, N, C, C, call);
  if (drop && resid_dropout > 0)
    sequence_dropout_forward(out, out, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kMlpOut),
                             opt.samples);
  if (after_ffn) after_ffn->forward(out, N, call);
  add_inplace(out, a, NC);
}

void Gpt2Block::backward(float* dx, const float* dout, const float* x, const Buffers& buf, const TokenBatch& b,
                         const StepOptions& opt, BackwardWorkspace& ws) const {
  const int N = b.rows(), C = attn.C, F = fc.out;
  const size_t NC = size_t(N) * C;
  const bool drop = opt.training;
  float* d_a = ws.d_a.data<float>();   // gradient w.r.t. the residual stream a
  float* d_t = ws.d_b.data<float>();   // temporary [N,C]
  float* d_ffn = ws.d_ffn.data<float>();

  // MLP branch: out = a + hook_f(drop(proj(gelu(fc(ln2(a)))) + parallel(ln2(a))))
  std::copy(dout, dout + NC, d_a);
  std::copy(dout, dout + NC, d_t);
  if (after_ffn) after_ffn->backward(d_t, N);
  if (drop && resid_dropout > 0)
    sequence_dropout_backward(d_t, d_t, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kMlpOut),
                              opt.samples);
  proj.backward(d_ffn, d_t, saved_or_null(buf.fc_act), N);
  gelu_backward(d_ffn, d_ffn, buf.fc_pre.data<float>(), size_t(N) * F, gelu);
  float* d_ln2o = dx;  // dx serves as a temporary until the attention branch writes it
  fc.backward(d_ln2o, d_ffn, saved_or_null(buf.ln2_out), N);
  // Column-parallel c_fc: this rank's columns give a partial input gradient (attn.backward reduces its own).
  if (fc.parallel == Linear::Parallel::column) copy_to_region_backward(fc.tp, d_ln2o, NC);
  if (ffn_parallel) ffn_parallel->backward(d_ln2o, d_t, saved_or_null(buf.ln2_out), N, C, C);
  ln2.backward(d_t, d_ln2o, buf.a.data<float>(), buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), N);
  add_inplace(d_a, d_t, NC);

  // attention branch: a = x + hook_a(drop(attn(ln1(x))))
  std::copy(d_a, d_a + NC, d_t);
  if (after_attention) after_attention->backward(d_t, N);
  if (drop && resid_dropout > 0)
    sequence_dropout_backward(d_t, d_t, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kAttnOut),
                              opt.samples);
  // d(ln1_out) into dx's space is not possible (dx is needed for the LN input grad), so reuse d_ffn's
  // first N*C floats (F >= C always for these models).
  float* d_ln1o = d_ffn;
  attn.backward(d_ln1o, d_t, saved_or_null(buf.ln1_out), buf.attn, b, drop ? attn.dropout_p : 0.0f,
                derive_seed(opt.seed, layer_index, kAttnProbs), opt.samples, ws.d_qkv.data<float>(), ws.scratch.data<float>(),
                /*accumulate_dx=*/false);
  ln1.backward(dx, d_ln1o, x, buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), N);
  add_inplace(dx, d_a, NC);
}

}  // namespace ladder::core
