// GEMM wrapper: every transpose combination with padded leading dimensions, alpha/beta, and the strided
// batched form against a naive loop.
#include <gtest/gtest.h>

#include <vector>

#include "core/kernels/gemm.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::randn;

namespace {

// Naive row-major reference in double: C = alpha op(A) op(B) + beta C.
void gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0;
      for (int k = 0; k < K; k++) {
        double a = ta ? A[k * lda + i] : A[i * lda + k];
        double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = float(alpha * acc + beta * C[i * ldc + j]);
    }
}

}  // namespace

TEST(KernelGemm, AllTransposesWithStridesMatchNaive) {
  const int M = 7, N = 5, K = 9;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 4;
      auto A = randn(size_t(ta ? K : M) * lda, 1);
      auto B = randn(size_t(tb ? N : K) * ldb, 2);
      auto C = randn(size_t(M) * ldc, 3);
      auto Cref = C;
      lc::gemm(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, C.data(), ldc);
      gemm_ref(ta, tb, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 0.3f, Cref.data(), ldc);
      for (size_t i = 0; i < C.size(); i++)
        EXPECT_NEAR(C[i], Cref[i], 1e-4) << "ta=" << ta << " tb=" << tb << " i=" << i;
    }
}

TEST(KernelGemm, StridedBatchedMatchesPerMatrixNaive) {
  const int M = 6, N = 4, K = 5, batch = 7;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
      long sa = long(M) * K + 3, sb = long(K) * N + 1, sc = long(M) * N + 2;
      auto A = randn(size_t(sa) * batch, 4);
      auto B = randn(size_t(sb) * batch, 5);
      auto C = randn(size_t(sc) * batch, 6);
      auto Cref = C;
      lc::gemm_strided_batched(ta, tb, M, N, K, 1.5f, A.data(), lda, sa, B.data(), ldb, sb, 0.5f, C.data(), ldc, sc,
                               batch);
      for (int i = 0; i < batch; i++)
        gemm_ref(ta, tb, M, N, K, 1.5f, A.data() + i * sa, lda, B.data() + i * sb, ldb, 0.5f, Cref.data() + i * sc,
                 ldc);
      for (size_t i = 0; i < C.size(); i++)
        EXPECT_NEAR(C[i], Cref[i], 1e-4) << "ta=" << ta << " tb=" << tb << " i=" << i;
    }
}

TEST(KernelGemm, BatchOfOneAndMeasure) {
  const int M = 3, N = 3, K = 3;
  auto A = randn(M * K, 7), B = randn(K * N, 8);
  std::vector<float> C(M * N, 0.0f), Cref(M * N, 0.0f);
  lc::gemm_strided_batched(false, false, M, N, K, 1.0f, A.data(), K, 0, B.data(), N, 0, 0.0f, C.data(), N, 0, 1);
  gemm_ref(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, Cref.data(), N);
  for (int i = 0; i < M * N; i++) EXPECT_NEAR(C[i], Cref[i], 1e-5);
  EXPECT_GT(lc::measure_sgemm_gflops(64, 2), 0.0);
}
