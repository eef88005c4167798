#include "core/cuda/cuda_gemm.h"

#include <sstream>
#include <stdexcept>

namespace ladder::core {

void cublas_check(cublasStatus_t status, const char* what, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  std::ostringstream msg;
  msg << "cuBLAS error in " << what << " at " << file << ":" << line << ": " << cublasGetStatusName(status) << " ("
      << cublasGetStatusString(status) << ")";
  throw std::runtime_error(msg.str());
}

CublasHandle::CublasHandle() {
  LADDER_CUBLAS_CHECK(cublasCreate(&handle_));
  LADDER_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
}

CublasHandle::~CublasHandle() {
  if (handle_) (void)cublasDestroy(handle_);
}

void CublasHandle::set_stream(cudaStream_t stream) { LADDER_CUBLAS_CHECK(cublasSetStream(handle_, stream)); }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a row-major matrix with leading
// dimension ld is, read column-major, its transpose with the same ld. So swap the operands (and M with N)
// and keep each operand's own transpose flag.
static cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

void cuda_gemm(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
               int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  LADDER_CUBLAS_CHECK(cublasSgemm(handle, op(trans_b), op(trans_a), N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

void cuda_gemm_strided_batched(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                               const float* A, int lda, long stride_a, const float* B, int ldb, long stride_b,
                               float beta, float* C, int ldc, long stride_c, int batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  LADDER_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, op(trans_b), op(trans_a), N, M, K, &alpha, B, ldb,
                                                (long long)stride_b, A, lda, (long long)stride_a, &beta, C, ldc,
                                                (long long)stride_c, batch));
}

}  // namespace ladder::core
