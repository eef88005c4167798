#pragma once
// cuBLAS GEMM with the row-major semantics of core/kernels/gemm.h:
// C = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T; op(A) is [M,K], op(B) is [K,N], C is [M,N], all
// row-major with leading dimensions lda, ldb, ldc (elements per row as stored). Device pointers.
#include <cublas_v2.h>

namespace ladder::core {

// Throw std::runtime_error("cuBLAS error in <what> at <file>:<line>: <status>") unless ok.
void cublas_check(cublasStatus_t status, const char* what, const char* file, int line);
#define LADDER_CUBLAS_CHECK(call) ::ladder::core::cublas_check((call), #call, __FILE__, __LINE__)

// An owned cuBLAS handle on the current device, in plain FP32 math (no TF32), so results match the CPU
// reference to float rounding.
class CublasHandle {
 public:
  CublasHandle();
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }
  void set_stream(cudaStream_t stream);

 private:
  cublasHandle_t handle_ = nullptr;
};

void cuda_gemm(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
               int lda, const float* B, int ldb, float beta, float* C, int ldc);

// `batch` independent GEMMs; matrix i starts at A + i*stride_a, B + i*stride_b, C + i*stride_c.
void cuda_gemm_strided_batched(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                               const float* A, int lda, long stride_a, const float* B, int ldb, long stride_b,
                               float beta, float* C, int ldc, long stride_c, int batch);

}  // namespace ladder::core
