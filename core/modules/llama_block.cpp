#include "core/modules/llama_block.h"

#include <algorithm>

#include "core/kernels/activations.h"
#include "core/kernels/gated_activation.h"
#include "core/modules/activation_slot.h"

namespace ladder::core {

namespace {
enum Site : uint64_t { kAttnProbs = 1 };
}

void LlamaBlock::Workspace::ensure(const LlamaBlock& blk, const TokenBatch& b) {
  const int64_t N = b.rows(), C = blk.attn.C, F = blk.gate.out;
  Tensor::ensure(d_a, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_t, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_h2, {N, C}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_h, {N, F}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_g, {N, F}, DType::f32, MemCategory::workspace);
  Tensor::ensure(attn_ws, {int64_t(blk.attn.backward_ws_floats(int(N)))}, DType::f32, MemCategory::workspace);
  Tensor::ensure(attn_scratch, {int64_t(attention_backward_scratch_floats(blk.attn.shape(b), false))}, DType::f32,
                 MemCategory::workspace);
}

void LlamaBlock::forward(float* out, const float* x, const int32_t* pos, Buffers& saved, Buffers& scratch, bool save,
                         const TokenBatch& b, const StepOptions& opt) const {
  const int N = b.rows(), C = attn.C, F = gate.out;
  const size_t NC = size_t(N) * C;
  const bool attn_input = attn.q.needs_input() || attn.k.needs_input() || attn.v.needs_input();
  float* h1 = activation_slot(save && attn_input, saved.h1, scratch.h1, {N, C}).data<float>();
  float* rstd1 = activation_slot(save, saved.rstd1, scratch.rstd1, {N}).data<float>();
  float* a = activation_slot(save, saved.a, scratch.a, {N, C}).data<float>();
  const bool ffn_input = gate.needs_input() || up.needs_input() || (ffn_parallel && ffn_parallel->needs_input());
  float* h2 = activation_slot(save && ffn_input, saved.h2, scratch.h2, {N, C}).data<float>();
  float* rstd2 = activation_slot(save, saved.rstd2, scratch.rstd2, {N}).data<float>();
  float* g = activation_slot(save, saved.g, scratch.g, {N, F}).data<float>();
  float* u = activation_slot(save, saved.u, scratch.u, {N, F}).data<float>();
  float* h = activation_slot(save && down.needs_input(), saved.h, scratch.h, {N, F}).data<float>();
  const BranchCall call{&opt, save, &b, attn.key_positions};

  attn_in.forward(h1, rstd1, x, N);
  if (sandwich) {
    float* raw = activation_slot(save, saved.attn_raw, scratch.attn_raw, {N, C}).data<float>();
    float* r = activation_slot(save, saved.rstd_a, scratch.rstd_a, {N}).data<float>();
    attn.forward(raw, h1, pos, saved.attn, scratch.attn, save, b, derive_seed(opt.seed, layer_index, kAttnProbs),
                 opt.samples, &call);
    attn_out.forward(a, r, raw, N);
  } else {
    attn.forward(a, h1, pos, saved.attn, scratch.attn, save, b, derive_seed(opt.seed, layer_index, kAttnProbs),
                 opt.samples, &call);
  }
  if (after_attention) after_attention->forward(a, N, call);
  add_inplace(a, x, NC);

  ffn_in.forward(h2, rstd2, a, N);
  gate.forward(g, h2, N, 0, 0, &call);
  up.forward(u, h2, N, 0, 0, &call);
  gated_forward(h, g, u, size_t(N) * F, act);
  float* f = sandwich ? activation_slot(save, saved.ffn_raw, scratch.ffn_raw, {N, C}).data<float>() : out;
  down.forward(f, h, N, 0, 0, &call);
  if (ffn_parallel) ffn_parallel->forward_add(f, h2, N, C, C, call);
  if (sandwich) ffn_out.forward(out, activation_slot(save, saved.rstd_f, scratch.rstd_f, {N}).data<float>(), f, N);
  if (after_ffn) after_ffn->forward(out, N, call);
  add_inplace(out, a, NC);
}

void LlamaBlock::backward(float* dx, const float* dout, const float* x, const int32_t* pos, const Buffers& buf,
                          const TokenBatch& b, const StepOptions& opt, Workspace& ws) const {
  const int N = b.rows(), C = attn.C, F = gate.out;
  const size_t NC = size_t(N) * C, NF = size_t(N) * F;
  float* d_a = ws.d_a.data<float>();
  float* d_t = ws.d_t.data<float>();
  float* d_h2 = ws.d_h2.data<float>();
  float* d_h = ws.d_h.data<float>();
  float* d_g = ws.d_g.data<float>();

  // FFN branch
  std::copy(dout, dout + NC, d_a);
  std::copy(dout, dout + NC, d_t);
  if (after_ffn) after_ffn->backward(d_t, N);
  if (sandwich) ffn_out.backward(d_t, d_t, buf.ffn_raw.data<float>(), buf.rstd_f.data<float>(), N);
  down.backward(d_h, d_t, saved_or_null(buf.h), N);
  gated_backward(d_g, d_h, d_h, buf.g.data<float>(), buf.u.data<float>(), NF, act);  // d_h becomes d(up)
  gate.backward(d_h2, d_g, saved_or_null(buf.h2), N);
  up.backward(d_h2, d_h, saved_or_null(buf.h2), N, true);
  if (gate.parallel == Linear::Parallel::column) copy_to_region_backward(gate.tp, d_h2, NC);
  if (ffn_parallel) ffn_parallel->backward(d_h2, d_t, saved_or_null(buf.h2), N, C, C);
  ffn_in.backward(d_t, d_h2, buf.a.data<float>(), buf.rstd2.data<float>(), N);
  add_inplace(d_a, d_t, NC);

  // attention branch
  std::copy(d_a, d_a + NC, d_t);
  if (after_attention) after_attention->backward(d_t, N);
  if (sandwich) attn_out.backward(d_t, d_t, buf.attn_raw.data<float>(), buf.rstd_a.data<float>(), N);
  attn.backward(d_h2, d_t, saved_or_null(buf.h1), pos, buf.attn, b, derive_seed(opt.seed, layer_index, kAttnProbs),
                opt.samples, ws.attn_ws.data<float>(), ws.attn_scratch.data<float>(), size_t(ws.attn_scratch.numel()));
  attn_in.backward(dx, d_h2, x, buf.rstd1.data<float>(), N);
  add_inplace(dx, d_a, NC);
}

void LlamaBlock::forward_cached(float* out, const float* x, int B, int Tn, KvCache& cache, Buffers& s) const {
  const int N = B * Tn, C = attn.C, F = gate.out;
  const size_t NC = size_t(N) * C;
  for (Tensor* t : {&s.h1, &s.a, &s.h2}) Tensor::ensure(*t, {N, C}, DType::f32, MemCategory::workspace);
  for (Tensor* t : {&s.g, &s.u, &s.h}) Tensor::ensure(*t, {N, F}, DType::f32, MemCategory::workspace);
  float *h1 = s.h1.data<float>(), *a = s.a.data<float>(), *h2 = s.h2.data<float>();
  float *g = s.g.data<float>(), *u = s.u.data<float>(), *h = s.h.data<float>();
  attn_in.forward(h1, nullptr, x, N);
  attn.forward_cached(a, h1, B, Tn, cache, s.attn);
  if (sandwich) attn_out.forward(a, nullptr, a, N);
  const BranchCall call;
  if (after_attention) after_attention->forward(a, N, call);
  add_inplace(a, x, NC);
  ffn_in.forward(h2, nullptr, a, N);
  gate.forward(g, h2, N);
  up.forward(u, h2, N);
  gated_forward(h, g, u, size_t(N) * F, act);
  down.forward(out, h, N);
  if (ffn_parallel) ffn_parallel->forward_add(out, h2, N, C, C, call);
  if (sandwich) ffn_out.forward(out, nullptr, out, N);
  if (after_ffn) after_ffn->forward(out, N, call);
  add_inplace(out, a, NC);
}

}  // namespace ladder::core
