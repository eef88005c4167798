#pragma once
// RMSNorm over the last dimension C of N rows, as Hugging Face's Llama and Gemma compute it in fp32:
//   out = x * rsqrt(mean(x^2) + eps) * g,   g = w (Llama) or 1 + w (Gemma: unit_offset).
namespace ladder::core {

// out, x: [N, C] (out may alias x); rstd [N] written when non-null (what backward needs, with x).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int N, int C, float eps, bool unit_offset);
// dx OVERWRITTEN (may alias dy); dw ACCUMULATED when non-null.
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd, int N,
                      int C, bool unit_offset);

}  // namespace ladder::core
