#pragma once
// LayerNorm over the last dimension C of N rows (llm.c layout).
namespace ladder::core {

// out, inp: [N, C]; mean, rstd: [N] (may be nullptr when backward will not run).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps);

// dinp is OVERWRITTEN; dweight / dbias are ACCUMULATED and may be nullptr (frozen parameters skip them).
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int N, int C);

}  // namespace ladder::core
