#pragma once
// GEMM through BLAS (row-major), plus the strided batched form attention uses.
// C = alpha * op(A) @ op(B) + beta * C, with op(X) = X or X^T; A is [M,K] after op, B is [K,N], C is [M,N].
namespace ladder::core {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc);

// `batch` independent GEMMs; matrix i starts at A + i*stride_a (etc.). Runs the batch in parallel with
// one BLAS thread per GEMM (the small per-head matrices of attention do not scale inside BLAS).
void gemm_strided_batched(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                          long stride_a, const float* B, int ldb, long stride_b, float beta, float* C, int ldc,
                          long stride_c, int batch);

// sgemm GFLOP/s this machine reaches on an n x n x n product with the current threads (for reports).
double measure_sgemm_gflops(int n, int repeats);

}  // namespace ladder::core
