#pragma once
// One GPT-2 decoder block (pre-LN), Hugging Face `h.<i>`:
//   a   = x + hook_a(dropout(attn(ln_1(x))))                        attn.c_attn (fused Conv1D), attn.c_proj
//   out = a + hook_f(dropout(mlp(ln_2(a)) + parallel(ln_2(a))))     mlp.c_fc, gelu_new, mlp.c_proj
// (the hooks and the parallel branch are identities unless a method installs them)
#include "core/kernels/activations.h"
#include "core/modules/backward_workspace.h"
#include "core/modules/layer_norm.h"
#include "core/modules/self_attention.h"
#include "core/modules/sublayer_hook.h"

namespace ladder::core {

struct Gpt2Block {
  SelfAttention attn;  // fused, causal
  LayerNorm ln1, ln2;
  Linear fc, proj;
  GeluKind gelu = GeluKind::tanh;
  float resid_dropout = 0.0f;
  int layer_index = 0;
  int max_positions = 0;
  SublayerHook* after_attention = nullptr;  // seams for methods, as in BertLayer (not owned)
  SublayerHook* after_ffn = nullptr;
  LinearBranch* ffn_parallel = nullptr;

  struct Buffers {
    SelfAttention::Buffers attn;
    Tensor ln1_out, ln1_mean, ln1_rstd;  // [N,C], [N], [N]
    Tensor a;                            // [N,C] residual after attention
    Tensor ln2_out, ln2_mean, ln2_rstd;
    Tensor fc_pre, fc_act;               // [N,F]
  };

  // As BertLayer::forward: `saved` keeps what backward reads, `scratch` (shared) holds the rest.
  void forward(float* out, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
               const StepOptions& opt) const;
  void backward(float* dx, const float* dout, const float* x, const Buffers& buf, const TokenBatch& b,
                const StepOptions& opt, BackwardWorkspace& ws) const;
  double flops(const TokenBatch& b) const { return attn.flops(b) + fc.flops(b.rows()) + proj.flops(b.rows()); }
};

}  // namespace ladder::core
