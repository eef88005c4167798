#pragma once
// f32 CUDA kernels with the semantics of the CPU kernels in core/kernels/ (same layouts, same
// overwrite/accumulate rules). All pointers are device pointers; every call is asynchronous on `stream`
// and checks the launch. Sizes come last, llm.c style.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "core/kernels/activations.h"  // GeluKind

namespace ladder::core {

// out = gelu(inp), n elements (out may alias inp). erf: BERT "gelu"; tanh: GPT-2 "gelu_new".
void cuda_gelu_forward(float* out, const float* inp, size_t n, GeluKind kind, cudaStream_t stream = nullptr);
// dinp = dout * gelu'(inp), OVERWRITES dinp (dinp may alias dout).
void cuda_gelu_backward(float* dinp, const float* dout, const float* inp, size_t n, GeluKind kind,
                        cudaStream_t stream = nullptr);

// out is (N,C): out[n,c] += bias[c].
void cuda_add_bias(float* out, const float* bias, int N, int C, cudaStream_t stream = nullptr);
// dbias[c] += sum_n dout[n,c]  (ACCUMULATES; deterministic, no atomics).
void cuda_bias_backward(float* dbias, const float* dout, int N, int C, cudaStream_t stream = nullptr);

// LayerNorm over the last dimension, one warp per row. out, inp: (N,C); weight, bias: (C);
// mean, rstd: (N), may be nullptr when backward will not run. Variance is the biased one, as in PyTorch.
void cuda_layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                            const float* bias, int N, int C, float eps, cudaStream_t stream = nullptr);
// dinp OVERWRITTEN; dweight, dbias ACCUMULATED and may be nullptr (frozen parameters skip them).
void cuda_layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                             const float* weight, const float* mean, const float* rstd, int N, int C,
                             cudaStream_t stream = nullptr);

// Row softmax of attention scores. scores, probs: (B, NH, T, T); row (b,h,i) holds query i's raw scores
// q_i . k_j. probs[b,h,i,j] = softmax_j(scale * scores) over the keys j that are kept: key_mask[b,j] != 0
// (key_mask is (B,T), nullptr keeps all) and, when causal, j <= i. Dropped keys get probability exactly 0;
// a row with no kept key is uniform over all T keys (1/T), as the CPU kernels and Hugging Face's additive
// finfo.min mask give. probs may alias scores.
void cuda_masked_softmax_forward(float* probs, const float* scores, const float* key_mask, bool causal,
                                 float scale, int B, int NH, int T, cudaStream_t stream = nullptr);
// dscores = d loss / d scores (the raw, unscaled scores): scale * p * (dprobs - sum_j p_j dprobs_j).
// OVERWRITES dscores; dscores may alias dprobs. Masked entries get 0 because their probability is 0.
void cuda_masked_softmax_backward(float* dscores, const float* dprobs, const float* probs, float scale, int B,
                                  int NH, int T, cudaStream_t stream = nullptr);

}  // namespace ladder::core
