#pragma once
// One decoder layer of the Llama family, Hugging Face `layers.<i>`:
//   Llama:   a = x + hook_a(attn(input_layernorm(x)))
//            out = a + hook_f(mlp(post_attention_layernorm(a)) + parallel(...))
//   Gemma 3: a = x + hook_a(post_attention_layernorm(attn(input_layernorm(x))))
//            out = a + hook_f(post_feedforward_layernorm(mlp(pre_feedforward_layernorm(a)) + parallel(...)))
// with mlp(h) = down_proj(act(gate_proj(h)) * up_proj(h)). The norms after the sublayers exist when
// the config says sandwich_norm (the hooks and the parallel branch are identities unless a method installs
// them).
#include "core/backbones/transformer_config.h"
#include "core/modules/grouped_query_attention.h"
#include "core/modules/rms_norm.h"
#include "core/modules/sublayer_hook.h"

namespace ladder::core {

struct LlamaBlock {
  RmsNorm attn_in, attn_out;  // input_layernorm; post_attention_layernorm (Gemma only)
  RmsNorm ffn_in, ffn_out;    // post_attention_layernorm (Llama) / pre_feedforward_layernorm; post_feedforward_layernorm (Gemma)
  bool sandwich = false;
  GroupedQueryAttention attn;
  Linear gate, up, down;
  GateActivation act = GateActivation::silu;
  int layer_index = 0;
  SublayerHook* after_attention = nullptr;  // seams for methods (not owned)
  SublayerHook* after_ffn = nullptr;
  LinearBranch* ffn_parallel = nullptr;

  struct Buffers {
    GroupedQueryAttention::Buffers attn;
    Tensor h1, rstd1;        // input_layernorm output [N,C] and rstd [N]
    Tensor attn_raw, rstd_a; // attention output before its post norm (sandwich)
    Tensor a;                // [N,C] residual after attention
    Tensor h2, rstd2;        // the FFN's input norm
    Tensor g, u, h;          // [N,F] gate and up projections, act(g)*u
    Tensor ffn_raw, rstd_f;  // FFN output before its post norm (sandwich)
  };
  struct Workspace {
    Tensor d_a, d_t, d_h2;   // [N,C]
    Tensor d_h, d_g;         // [N,F]
    Tensor attn_ws, attn_scratch;
    void ensure(const LlamaBlock& blk, const TokenBatch& b);
  };

  // out [N,C] OVERWRITTEN; pos [N] RoPE positions. `saved` keeps what backward reads, `scratch` the rest.
  void forward(float* out, const float* x, const int32_t* pos, Buffers& saved, Buffers& scratch, bool save,
               const TokenBatch& b, const StepOptions& opt) const;
  void backward(float* dx, const float* dout, const float* x, const int32_t* pos, const Buffers& buf, const TokenBatch& b,
                const StepOptions& opt, Workspace& ws) const;
  // Inference with a KV cache (see GroupedQueryAttention::forward_cached).
  void forward_cached(float* out, const float* x, int B, int Tn, KvCache& cache, Buffers& scratch) const;
  double flops(const TokenBatch& b) const {
    return attn.flops(b) + gate.flops(b.rows()) + up.flops(b.rows()) + down.flops(b.rows());
  }
};

}  // namespace ladder::core
