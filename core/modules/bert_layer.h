#pragma once
// One BERT encoder layer (post-LN), Hugging Face `encoder.layer.<i>`:
//   h1  = LN1(x + hook_a(dropout(attention(x))))                     attention.{self,output}
//   out = LN2(h1 + hook_f(dropout(W2 gelu(W1 h1) + parallel(h1))))   intermediate.dense, output.dense
// (the hooks and the parallel branch are identities unless a method installs them)
#include "core/kernels/activations.h"
#include "core/modules/backward_workspace.h"
#include "core/modules/layer_norm.h"
#include "core/modules/self_attention.h"
#include "core/modules/sublayer_hook.h"

namespace ladder::core {

struct BertLayer {
  SelfAttention attn;
  LayerNorm ln1, ln2;
  Linear ffn_in, ffn_out;
  GeluKind gelu = GeluKind::erf;
  float hidden_dropout = 0.0f;
  int layer_index = 0;
  int max_positions = 0;
  // Seams for methods (not owned; null = none): hooks on the attention / FFN sublayer outputs (bottleneck
  // adapters, Compacter) and a branch parallel to the whole FFN (KronA^B), fed the FFN's input.
  SublayerHook* after_attention = nullptr;
  SublayerHook* after_ffn = nullptr;
  LinearBranch* ffn_parallel = nullptr;

  struct Buffers {
    SelfAttention::Buffers attn;
    Tensor h1_pre, ln1_mean, ln1_rstd, h1;  // [N,C], [N], [N], [N,C]
    Tensor ffn_pre, ffn_act;                // [N,F]
    Tensor h2_pre, ln2_mean, ln2_rstd;      // [N,C], [N], [N]
  };

  // out [N,C] OVERWRITTEN. With `save`, what backward reads is kept in `saved` (inputs of frozen Linears
  // are not); all else uses `scratch`, shared by every layer. first_token_only: out is [B,C], the layer's
  // output at position 0 of each sequence, and everything after attention runs on those rows only.
  void forward(float* out, const float* x, Buffers& saved, Buffers& scratch, bool save, const TokenBatch& b,
               const StepOptions& opt, bool first_token_only = false) const;
  // dx [N,C] OVERWRITTEN from dout (null: no input gradient, only parameter gradients); x is the layer
  // input given to forward.
  // With first_token_only (as in forward) dout is [B,C]; dx is still [N,C].
  void backward(float* dx, const float* dout, const float* x, const Buffers& buf, const TokenBatch& b,
                const StepOptions& opt, BackwardWorkspace& ws, bool first_token_only = false) const;
  double flops(const TokenBatch& b) const { return attn.flops(b) + ffn_in.flops(b.rows()) + ffn_out.flops(b.rows()); }
};

}  // namespace ladder::core
