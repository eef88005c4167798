// f32 kernels: grid-stride element loops, one warp per row for row reductions (full-mask shuffles), and
// deterministic column sums (no atomics) for the parameter gradients.
#include "core/cuda/cuda_kernels.h"

#include <cuda_runtime.h>

#include <cmath>

#include "core/cuda/cuda_device.h"

namespace ladder::core {
namespace {

constexpr int kThreads = 256;                  // element-wise blocks
constexpr int kWarpsPerBlock = kThreads / 32;  // row kernels: one warp per row
constexpr int kMaxBlocks = 65535;              // grid-stride loops cover the rest
constexpr unsigned kFullMask = 0xffffffffu;

int element_blocks(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  return int(b < size_t(kMaxBlocks) ? b : size_t(kMaxBlocks));
}
int row_blocks(size_t rows) {
  size_t b = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return int(b < size_t(kMaxBlocks) ? b : size_t(kMaxBlocks));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

// ---- GELU ----------------------------------------------------------------------------------------------
constexpr float kInvSqrt2 = 0.70710678118654752f;    // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/sqrt(2*pi)
constexpr float kSqrt2OverPi = 0.79788456080286536f; // sqrt(2/pi)
constexpr float kGeluCubic = 0.044715f;

__device__ __forceinline__ float gelu_value(float x, bool tanh_form) {
  if (tanh_form) return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
  return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
}
__device__ __forceinline__ float gelu_grad(float x, bool tanh_form) {
  if (tanh_form) {
    float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  }
  return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
}

__global__ void gelu_forward_kernel(float* out, const float* inp, size_t n, bool tanh_form) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = gelu_value(inp[i], tanh_form);
}
__global__ void gelu_backward_kernel(float* dinp, const float* dout, const float* inp, size_t n, bool tanh_form) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dinp[i] = dout[i] * gelu_grad(inp[i], tanh_form);
}

// ---- bias ----------------------------------------------------------------------------------------------
__global__ void add_bias_kernel(float* out, const float* bias, size_t total, int C) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x)
    out[i] += bias[i % size_t(C)];
}

// Column sums of (N,C) matrices: block (32, kColRows) covers 32 columns; thread (x, y) sums rows
// y, y + kColRows, ... of column x, then the block adds its kColRows partials in a fixed order.
constexpr int kColRows = 16;

__global__ void bias_backward_kernel(float* dbias, const float* dout, int N, int C) {
  __shared__ float part[kColRows][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  float s = 0.0f;
  if (c < C)
    for (int n = threadIdx.y; n < N; n += kColRows) s += dout[size_t(n) * C + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float total = 0.0f;
    for (int r = 0; r < kColRows; ++r) total += part[r][threadIdx.x];
    dbias[c] += total;
  }
}

// ---- LayerNorm -----------------------------------------------------------------------------------------
__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int N, int C, float eps) {
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  for (int row = blockIdx.x * kWarpsPerBlock + warp; row < N; row += gridDim.x * kWarpsPerBlock) {
    const float* x = inp + size_t(row) * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    float m = warp_sum(s) / float(C);
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
      float d = x[c] - m;
      v += d * d;
    }
    float r = rsqrtf(warp_sum(v) / float(C) + eps);
    float* o = out + size_t(row) * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    if (lane == 0) {
      if (mean) mean[row] = m;
      if (rstd) rstd[row] = r;
    }
  }
}

__global__ void layernorm_backward_input_kernel(float* dinp, const float* dout, const float* inp,
                                                const float* weight, const float* mean, const float* rstd, int N,
                                                int C) {
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  for (int row = blockIdx.x * kWarpsPerBlock + warp; row < N; row += gridDim.x * kWarpsPerBlock) {
    const float* x = inp + size_t(row) * C;
    const float* dy = dout + size_t(row) * C;
    float m = mean[row], r = rstd[row];
    // dnorm = dy * w; dx = r * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
    float a = 0.0f, b = 0.0f;
    for (int c = lane; c < C; c += 32) {
      float dn = dy[c] * weight[c];
      a += dn;
      b += dn * (x[c] - m) * r;
    }
    a = warp_sum(a) / float(C);
    b = warp_sum(b) / float(C);
    float* dx = dinp + size_t(row) * C;
    for (int c = lane; c < C; c += 32) {
      float norm = (x[c] - m) * r;
      dx[c] = r * (dy[c] * weight[c] - a - norm * b);
    }
  }
}

// dweight[c] += sum_n dout[n,c] * norm[n,c]; dbias[c] += sum_n dout[n,c]. Either may be null.
__global__ void layernorm_backward_params_kernel(float* dweight, float* dbias, const float* dout, const float* inp,
                                                 const float* mean, const float* rstd, int N, int C) {
  __shared__ float pw[kColRows][33];
  __shared__ float pb[kColRows][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  float sw = 0.0f, sb = 0.0f;
  if (c < C)
    for (int n = threadIdx.y; n < N; n += kColRows) {
      size_t i = size_t(n) * C + c;
      sw += dout[i] * (inp[i] - mean[n]) * rstd[n];
      sb += dout[i];
    }
  pw[threadIdx.y][threadIdx.x] = sw;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.0f, tb = 0.0f;
    for (int r = 0; r < kColRows; ++r) {
      tw += pw[r][threadIdx.x];
      tb += pb[r][threadIdx.x];
    }
    if (dweight) dweight[c] += tw;
    if (dbias) dbias[c] += tb;
  }
}

// ---- masked softmax ------------------------------------------------------------------------------------
// Row r of (B*NH*T) rows is (b, h, i) with b = r / (NH*T), i = r % T. Each lane owns columns
// j = lane, lane+32, ...: it reads and writes only those, so probs may alias scores.
__global__ void masked_softmax_forward_kernel(float* probs, const float* scores, const float* key_mask,
                                              bool causal, float scale, int B, int NH, int T) {
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  long long rows = (long long)B * NH * T;
  for (long long row = (long long)blockIdx.x * kWarpsPerBlock + warp; row < rows;
       row += (long long)gridDim.x * kWarpsPerBlock) {
    int b = int(row / ((long long)NH * T));
    int i = int(row % T);
    const float* s = scores + size_t(row) * T;
    float* p = probs + size_t(row) * T;
    const float* km = key_mask ? key_mask + size_t(b) * T : nullptr;
    int jend = causal ? i + 1 : T;  // keys at j >= jend are dropped by causality
    float mx = -INFINITY;
    for (int j = lane; j < jend; j += 32)
      if (!km || km[j] != 0.0f) mx = fmaxf(mx, scale * s[j]);
    mx = warp_max(mx);
    if (mx == -INFINITY) {  // no kept key: uniform over all T keys, as the CPU kernels and HF's finfo.min mask
      for (int j = lane; j < T; j += 32) p[j] = 1.0f / float(T);
      continue;
    }
    float sum = 0.0f;
    for (int j = lane; j < jend; j += 32)
      if (!km || km[j] != 0.0f) sum += expf(scale * s[j] - mx);
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32) {
      bool kept = j < jend && (!km || km[j] != 0.0f);
      p[j] = kept ? expf(scale * s[j] - mx) * inv : 0.0f;
    }
  }
}

__global__ void masked_softmax_backward_kernel(float* dscores, const float* dprobs, const float* probs, float scale,
                                               long long rows, int T) {
  int lane = threadIdx.x % 32;
  int warp = threadIdx.x / 32;
  for (long long row = (long long)blockIdx.x * kWarpsPerBlock + warp; row < rows;
       row += (long long)gridDim.x * kWarpsPerBlock) {
    const float* p = probs + size_t(row) * T;
    const float* dp = dprobs + size_t(row) * T;
    float* ds = dscores + size_t(row) * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) dot += p[j] * dp[j];
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) ds[j] = scale * p[j] * (dp[j] - dot);
  }
}

}  // namespace

void cuda_gelu_forward(float* out, const float* inp, size_t n, GeluKind kind, cudaStream_t stream) {
  if (n == 0) return;
  gelu_forward_kernel<<<element_blocks(n), kThreads, 0, stream>>>(out, inp, n, kind == GeluKind::tanh);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_gelu_backward(float* dinp, const float* dout, const float* inp, size_t n, GeluKind kind,
                        cudaStream_t stream) {
  if (n == 0) return;
  gelu_backward_kernel<<<element_blocks(n), kThreads, 0, stream>>>(dinp, dout, inp, n, kind == GeluKind::tanh);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_add_bias(float* out, const float* bias, int N, int C, cudaStream_t stream) {
  size_t total = size_t(N) * size_t(C);
  if (N <= 0 || C <= 0) return;
  add_bias_kernel<<<element_blocks(total), kThreads, 0, stream>>>(out, bias, total, C);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_bias_backward(float* dbias, const float* dout, int N, int C, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  bias_backward_kernel<<<(C + 31) / 32, dim3(32, kColRows), 0, stream>>>(dbias, dout, N, C);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                            const float* bias, int N, int C, float eps, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  layernorm_forward_kernel<<<row_blocks(size_t(N)), kThreads, 0, stream>>>(out, mean, rstd, inp, weight, bias, N,
                                                                           C, eps);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                             const float* weight, const float* mean, const float* rstd, int N, int C,
                             cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  layernorm_backward_input_kernel<<<row_blocks(size_t(N)), kThreads, 0, stream>>>(dinp, dout, inp, weight, mean,
                                                                                  rstd, N, C);
  LADDER_CUDA_CHECK(cudaGetLastError());
  if (dweight || dbias) {
    layernorm_backward_params_kernel<<<(C + 31) / 32, dim3(32, kColRows), 0, stream>>>(dweight, dbias, dout, inp,
                                                                                       mean, rstd, N, C);
    LADDER_CUDA_CHECK(cudaGetLastError());
  }
}

void cuda_masked_softmax_forward(float* probs, const float* scores, const float* key_mask, bool causal,
                                 float scale, int B, int NH, int T, cudaStream_t stream) {
  if (B <= 0 || NH <= 0 || T <= 0) return;
  size_t rows = size_t(B) * size_t(NH) * size_t(T);
  masked_softmax_forward_kernel<<<row_blocks(rows), kThreads, 0, stream>>>(probs, scores, key_mask, causal, scale,
                                                                           B, NH, T);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

void cuda_masked_softmax_backward(float* dscores, const float* dprobs, const float* probs, float scale, int B,
                                  int NH, int T, cudaStream_t stream) {
  if (B <= 0 || NH <= 0 || T <= 0) return;
  long long rows = (long long)B * NH * T;
  masked_softmax_backward_kernel<<<row_blocks(size_t(rows)), kThreads, 0, stream>>>(dscores, dprobs, probs, scale,
                                                                                    rows, T);
  LADDER_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ladder::core
