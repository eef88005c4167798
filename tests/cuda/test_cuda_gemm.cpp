// cuda_gemm / cuda_gemm_strided_batched against a double CPU reference with the row-major semantics of
// core/kernels/gemm.h: C = alpha * op(A) @ op(B) + beta * C, leading dimensions padded past the row length.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cuda/cuda_buffer.h"
#include "core/cuda/cuda_gemm.h"
#include "cuda_test_support.h"

namespace ladder::core {
namespace {

using test::all_close;
using test::random_floats;

struct Ref {
  std::vector<double> c, scale;
};

// One GEMM on row-major storage; scale[i] = sum of |terms| that make C[i], for the tolerance.
void gemm_ref(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, const float* C0, int ldc, double* C, double* scale) {
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0, a = 0;
      for (int k = 0; k < K; ++k) {
        double av = ta ? A[size_t(k) * lda + m] : A[size_t(m) * lda + k];
        double bv = tb ? B[size_t(n) * ldb + k] : B[size_t(k) * ldb + n];
        s += av * bv;
        a += std::fabs(av * bv);
      }
      size_t i = size_t(m) * ldc + n;
      C[i] = alpha * s + beta * double(C0[i]);
      scale[i] = std::fabs(alpha) * a + std::fabs(beta * double(C0[i]));
    }
}

void check_gemm(bool ta, bool tb) {
  const int M = 37, N = 29, K = 53;
  const float alpha = 0.75f, beta = -0.5f;
  // Stored shapes: A is [M,K] (or [K,M] when transposed), B is [K,N] (or [N,K]); rows padded by 3.
  const int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
  const int lda = a_cols + 3, ldb = b_cols + 3, ldc = N + 3;
  std::vector<float> A = random_floats(size_t(a_rows) * lda, 51), B = random_floats(size_t(b_rows) * ldb, 52);
  std::vector<float> C0 = random_floats(size_t(M) * ldc, 53);
  // The ld padding of C is not part of the product and must stay as it was: the reference keeps C0 there.
  Ref r{std::vector<double>(C0.begin(), C0.end()), std::vector<double>(C0.size(), 1.0)};
  gemm_ref(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C0.data(), ldc, r.c.data(), r.scale.data());

  CudaBuffer<float> gA(A, MemCategory::workspace), gB(B, MemCategory::workspace), gC(C0, MemCategory::workspace);
  CublasHandle h;
  cuda_gemm(h.get(), ta, tb, M, N, K, alpha, gA.data(), lda, gB.data(), ldb, beta, gC.data(), ldc);
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(all_close(gC.to_host(), r.c, 1e-5, r.scale)) << "trans_a=" << ta << " trans_b=" << tb;
}

TEST(CudaGemm, RowMajorNN) {
  LADDER_REQUIRE_CUDA();
  check_gemm(false, false);
}
TEST(CudaGemm, RowMajorNT) {
  LADDER_REQUIRE_CUDA();
  check_gemm(false, true);
}
TEST(CudaGemm, RowMajorTN) {
  LADDER_REQUIRE_CUDA();
  check_gemm(true, false);
}
TEST(CudaGemm, RowMajorTT) {
  LADDER_REQUIRE_CUDA();
  check_gemm(true, true);
}

// Attention's shapes: per (batch*head) Q @ K^T with Q, K as column blocks of a [T, 3C] row (ld = 3C), then
// P @ V. Strides jump between heads.
TEST(CudaGemm, StridedBatchedMatchesPerMatrixReference) {
  LADDER_REQUIRE_CUDA();
  const int batch = 6, T = 21, HS = 16, ld_qkv = 5 * HS;  // q, k live in one padded buffer
  const long stride_qk = long(T) * ld_qkv, stride_s = long(T) * T;
  const float alpha = 0.25f;
  std::vector<float> qk = random_floats(size_t(batch) * stride_qk, 61);
  std::vector<float> S0 = random_floats(size_t(batch) * stride_s, 62);
  const float* q = qk.data();       // columns [0, HS)
  const float* k = qk.data() + HS;  // columns [HS, 2HS)
  Ref r{std::vector<double>(S0.size()), std::vector<double>(S0.size())};
  for (int i = 0; i < batch; ++i)
    gemm_ref(false, true, T, T, HS, alpha, q + i * stride_qk, ld_qkv, k + i * stride_qk, ld_qkv, 0.0f,
             S0.data() + i * stride_s, T, r.c.data() + i * stride_s, r.scale.data() + i * stride_s);

  CudaBuffer<float> gqk(qk, MemCategory::workspace), gS(S0, MemCategory::workspace);
  CublasHandle h;
  cuda_gemm_strided_batched(h.get(), false, true, T, T, HS, alpha, gqk.data(), ld_qkv, stride_qk, gqk.data() + HS,
                            ld_qkv, stride_qk, 0.0f, gS.data(), T, stride_s, batch);
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(all_close(gS.to_host(), r.c, 1e-5, r.scale)) << "Q K^T";

  // P @ V with beta = 1 accumulating into an existing output: out [T, HS] (ld = HS), P [T, T], V [T, HS].
  std::vector<float> P = random_floats(size_t(batch) * stride_s, 63), V = random_floats(size_t(batch) * T * HS, 64);
  std::vector<float> O0 = random_floats(size_t(batch) * T * HS, 65);
  Ref ro{std::vector<double>(O0.size()), std::vector<double>(O0.size())};
  const long stride_v = long(T) * HS;
  for (int i = 0; i < batch; ++i)
    gemm_ref(false, false, T, HS, T, 1.0f, P.data() + i * stride_s, T, V.data() + i * stride_v, HS, 1.0f,
             O0.data() + i * stride_v, HS, ro.c.data() + i * stride_v, ro.scale.data() + i * stride_v);
  CudaBuffer<float> gP(P, MemCategory::workspace), gV(V, MemCategory::workspace), gO(O0, MemCategory::workspace);
  cuda_gemm_strided_batched(h.get(), false, false, T, HS, T, 1.0f, gP.data(), T, stride_s, gV.data(), HS, stride_v,
                            1.0f, gO.data(), HS, stride_v, batch);
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(all_close(gO.to_host(), ro.c, 1e-5, ro.scale)) << "P V (beta=1)";
}

}  // namespace
}  // namespace ladder::core
