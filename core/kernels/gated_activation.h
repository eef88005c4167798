#pragma once
// The gated FFN's point-wise part: h = act(gate) * up, with act SiLU (Llama's SwiGLU) or tanh-GELU (Gemma's
// GeGLU, HF "gelu_pytorch_tanh").
#include <cstddef>

#include "core/backbones/transformer_config.h"

namespace ladder::core {

// h [n] OVERWRITTEN (may alias neither input).
void gated_forward(float* h, const float* gate, const float* up, size_t n, GateActivation act);
// d_gate, d_up [n] OVERWRITTEN from dh; either may alias dh (read first, element by element).
void gated_backward(float* d_gate, float* d_up, const float* dh, const float* gate, const float* up, size_t n,
                    GateActivation act);

}  // namespace ladder::core
