#pragma once
// Point-wise ops with explicit backward. Backward OVERWRITES dinp (never accumulates).
#include <cstddef>
#include <cstdint>

namespace ladder::core {

enum class GeluKind { erf, tanh };  // BERT uses erf ("gelu"), GPT-2 uses tanh ("gelu_new")

void gelu_forward(float* out, const float* inp, size_t n, GeluKind kind);
void gelu_backward(float* dinp, const float* dout, const float* inp, size_t n, GeluKind kind);

void tanh_forward(float* out, const float* inp, size_t n);
// Uses the saved output: d/dx tanh = 1 - out^2.
void tanh_backward(float* dinp, const float* dout, const float* out, size_t n);

// out[i] = a[i] + b[i] (out may alias a or b).
void add(float* out, const float* a, const float* b, size_t n);
// out[i] += a[i]
void add_inplace(float* out, const float* a, size_t n);
// out[n, c] += bias[c] for N rows of C.
void add_bias(float* out, const float* bias, int N, int C);
// dbias[c] += sum_n dout[n, c]  (ACCUMULATES).
void bias_backward(float* dbias, const float* dout, int N, int C);
void scale_inplace(float* x, float s, size_t n);

}  // namespace ladder::core
