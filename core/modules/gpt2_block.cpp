#include "core/modules/gpt2_block.h"

#include <algorithm>

#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"

namespace ladder::core {

namespace {
enum Site : uint64_t { kAttnProbs = 1, kAttnOut = 2, kMlpOut = 3 };
}  // namespace

void Gpt2Block::forward(float* out, const float* x, Buffers& buf, const TokenBatch& b, const StepOptions& opt) const {
  const int N = b.rows(), C = attn.C, F = fc.out;
  const size_t NC = size_t(N) * C;
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  const bool drop = opt.training;
  Tensor::ensure(buf.ln1_out, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ln1_mean, {N}, DType::f32, cat);
  Tensor::ensure(buf.ln1_rstd, {N}, DType::f32, cat);
  Tensor::ensure(buf.a, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ln2_out, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ln2_mean, {N}, DType::f32, cat);
  Tensor::ensure(buf.ln2_rstd, {N}, DType::f32, cat);
  Tensor::ensure(buf.fc_pre, {N, F}, DType::f32, cat);
  Tensor::ensure(buf.fc_act, {N, F}, DType::f32, cat);

  float* ln1o = buf.ln1_out.data<float>();
  ln1.forward(ln1o, buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), x, N);
  float* a = buf.a.data<float>();
  attn.forward(a, ln1o, buf.attn, b, cat, drop ? attn.dropout_p : 0.0f, derive_seed(opt.seed, layer_index, kAttnProbs));
  if (drop && resid_dropout > 0)
    sequence_dropout_forward(a, a, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kAttnOut),
                             opt.first_row);
  add_inplace(a, x, NC);

  float* ln2o = buf.ln2_out.data<float>();
  ln2.forward(ln2o, buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), a, N);
  fc.forward(buf.fc_pre.data<float>(), ln2o, N);
  gelu_forward(buf.fc_act.data<float>(), buf.fc_pre.data<float>(), size_t(N) * F, gelu);
  proj.forward(out, buf.fc_act.data<float>(), N);
  if (drop && resid_dropout > 0)
    sequence_dropout_forward(out, out, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kMlpOut),
                             opt.first_row);
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

  // MLP branch: out = a + drop(proj(gelu(fc(ln2(a)))))
  std::copy(dout, dout + NC, d_a);
  std::copy(dout, dout + NC, d_t);
  if (drop && resid_dropout > 0)
    sequence_dropout_backward(d_t, d_t, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kMlpOut),
                              opt.first_row);
  proj.backward(d_ffn, d_t, buf.fc_act.data<float>(), N);
  gelu_backward(d_ffn, d_ffn, buf.fc_pre.data<float>(), size_t(N) * F, gelu);
  fc.backward(d_t, d_ffn, buf.ln2_out.data<float>(), N);  // d(ln2_out)
  float* d_ln2in = dx;  // use dx as a temporary; it is overwritten below
  ln2.backward(d_ln2in, d_t, buf.a.data<float>(), buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), N);
  add_inplace(d_a, d_ln2in, NC);

  // attention branch: a = x + drop(attn(ln1(x)))
  std::copy(d_a, d_a + NC, d_t);
  if (drop && resid_dropout > 0)
    sequence_dropout_backward(d_t, d_t, b, C, max_positions, resid_dropout, derive_seed(opt.seed, layer_index, kAttnOut),
                              opt.first_row);
  // d(ln1_out) into dx's space is not possible (dx is needed for the LN input grad), so reuse d_ffn's
  // first N*C floats (F >= C always for these models).
  float* d_ln1o = d_ffn;
  attn.backward(d_ln1o, d_t, buf.ln1_out.data<float>(), buf.attn, b, drop ? attn.dropout_p : 0.0f,
                derive_seed(opt.seed, layer_index, kAttnProbs), ws.d_qkv.data<float>(), ws.scratch.data<float>(),
                /*accumulate_dx=*/false);
  ln1.backward(dx, d_ln1o, x, buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), N);
  add_inplace(dx, d_a, NC);
}

}  // namespace ladder::core
