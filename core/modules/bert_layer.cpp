#include "core/modules/bert_layer.h"

#include <algorithm>

#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"

namespace ladder::core {

namespace {
// Dropout streams per layer and site, so no two sites share a mask.
enum Site : uint64_t { kAttnProbs = 1, kAttnOut = 2, kFfnOut = 3 };
}  // namespace

void BertLayer::forward(float* out, const float* x, Buffers& buf, const TokenBatch& b, const StepOptions& opt) const {
  const int N = b.rows(), C = attn.C, F = ffn_in.out;
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  const bool drop = opt.training;
  Tensor::ensure(buf.h1_pre, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ln1_mean, {N}, DType::f32, cat);
  Tensor::ensure(buf.ln1_rstd, {N}, DType::f32, cat);
  Tensor::ensure(buf.h1, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ffn_pre, {N, F}, DType::f32, cat);
  Tensor::ensure(buf.ffn_act, {N, F}, DType::f32, cat);
  Tensor::ensure(buf.h2_pre, {N, C}, DType::f32, cat);
  Tensor::ensure(buf.ln2_mean, {N}, DType::f32, cat);
  Tensor::ensure(buf.ln2_rstd, {N}, DType::f32, cat);

  float* h1_pre = buf.h1_pre.data<float>();
  attn.forward(h1_pre, x, buf.attn, b, cat, drop ? attn.dropout_p : 0.0f, derive_seed(opt.seed, layer_index, kAttnProbs));
  if (drop && hidden_dropout > 0)
    sequence_dropout_forward(h1_pre, h1_pre, b, C, max_positions, hidden_dropout,
                             derive_seed(opt.seed, layer_index, kAttnOut), opt.first_row);
  add_inplace(h1_pre, x, size_t(N) * C);
  float* h1 = buf.h1.data<float>();
  ln1.forward(h1, buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), h1_pre, N);

  ffn_in.forward(buf.ffn_pre.data<float>(), h1, N);
  gelu_forward(buf.ffn_act.data<float>(), buf.ffn_pre.data<float>(), size_t(N) * F, gelu);
  float* h2_pre = buf.h2_pre.data<float>();
  ffn_out.forward(h2_pre, buf.ffn_act.data<float>(), N);
  if (drop && hidden_dropout > 0)
    sequence_dropout_forward(h2_pre, h2_pre, b, C, max_positions, hidden_dropout,
                             derive_seed(opt.seed, layer_index, kFfnOut), opt.first_row);
  add_inplace(h2_pre, h1, size_t(N) * C);
  ln2.forward(out, buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), h2_pre, N);
}

void BertLayer::backward(float* dx, const float* dout, const float* x, const Buffers& buf, const TokenBatch& b,
                         const StepOptions& opt, BackwardWorkspace& ws) const {
  const int N = b.rows(), C = attn.C, F = ffn_in.out;
  const size_t NC = size_t(N) * C;
  const bool drop = opt.training;
  float* d_h2pre = ws.d_a.data<float>();
  float* d_h1 = ws.d_b.data<float>();
  float* d_ffn = ws.d_ffn.data<float>();

  ln2.backward(d_h2pre, dout, buf.h2_pre.data<float>(), buf.ln2_mean.data<float>(), buf.ln2_rstd.data<float>(), N);
  std::copy(d_h2pre, d_h2pre + NC, d_h1);  // residual branch
  if (drop && hidden_dropout > 0)
    sequence_dropout_backward(d_h2pre, d_h2pre, b, C, max_positions, hidden_dropout,
                              derive_seed(opt.seed, layer_index, kFfnOut), opt.first_row);
  ffn_out.backward(d_ffn, d_h2pre, buf.ffn_act.data<float>(), N);
  gelu_backward(d_ffn, d_ffn, buf.ffn_pre.data<float>(), size_t(N) * F, gelu);
  ffn_in.backward(d_h1, d_ffn, buf.h1.data<float>(), N, /*accumulate_dx=*/true);

  float* d_h1pre = ws.d_a.data<float>();
  ln1.backward(d_h1pre, d_h1, buf.h1_pre.data<float>(), buf.ln1_mean.data<float>(), buf.ln1_rstd.data<float>(), N);
  std::copy(d_h1pre, d_h1pre + NC, dx);  // residual branch
  if (drop && hidden_dropout > 0)
    sequence_dropout_backward(d_h1pre, d_h1pre, b, C, max_positions, hidden_dropout,
                              derive_seed(opt.seed, layer_index, kAttnOut), opt.first_row);
  attn.backward(dx, d_h1pre, x, buf.attn, b, drop ? attn.dropout_p : 0.0f,
                derive_seed(opt.seed, layer_index, kAttnProbs), ws.d_qkv.data<float>(), ws.scratch.data<float>(),
                /*accumulate_dx=*/true);
}

}  // namespace ladder::core
