#include "apps/gemm_ceiling.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <stdexcept>
#include <utility>

#include "core/kernels/gemm.h"

namespace ladder::apps {

std::string GemmShape::text() const {
  return std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " + (trans_a ? "T" : "N") +
         (trans_b ? "T" : "N");
}

std::vector<GemmShape> transformer_gemm_shapes(int d, int ffn, bool fused_qkv, const std::vector<int>& rows, int square_n) {
  std::vector<std::pair<int, int>> weights = {{d, d}, {d, ffn}, {ffn, d}};  // (in, out)
  if (fused_qkv) weights.push_back({d, 3 * d});
  std::vector<GemmShape> out;
  std::set<std::vector<int>> seen;
  auto add = [&](GemmShape s) {
    if (seen.insert({int(s.trans_a), int(s.trans_b), s.M, s.N, s.K}).second) out.push_back(std::move(s));
  };
  for (int n : std::set<int>(rows.begin(), rows.end()))
    for (auto [in, o] : weights) {
      const std::string w = std::to_string(in) + "->" + std::to_string(o) + " at " + std::to_string(n) + " rows";
      add({false, true, n, o, in, "forward " + w});        // Y[n,out] = X[n,in] W[out,in]^T
      add({false, false, n, in, o, "input grad " + w});    // dX[n,in] = dY[n,out] W[out,in]
      add({true, false, o, in, n, "weight grad " + w});    // dW[out,in] = dY^T X, K = n
    }
  if (square_n > 0) add({false, false, square_n, square_n, square_n, "square"});
  return out;
}

GemmCeiling measure_gemm_ceiling(const std::vector<GemmShape>& shapes, double min_seconds, int min_runs, int rounds) {
  if (shapes.empty()) throw std::invalid_argument("measure_gemm_ceiling: no shapes");
  GemmCeiling c;
  for (const auto& s : shapes) c.shapes.push_back({s, 0.0, 0});
  size_t a_size = 0, b_size = 0, c_size = 0;
  for (const auto& s : shapes) {
    a_size = std::max(a_size, size_t(s.M) * size_t(s.K));
    b_size = std::max(b_size, size_t(s.K) * size_t(s.N));
    c_size = std::max(c_size, size_t(s.M) * size_t(s.N));
  }
  // Not a kernel: allocates its own operands, filled so that no denormals slow a run.
  std::vector<float> A(a_size, 0.5f), B(b_size, 0.25f), C(c_size, 0.0f);
  using clock = std::chrono::steady_clock;
  for (int r = 0; r < std::max(1, rounds); ++r)
    for (auto& t : c.shapes) {
      const GemmShape& s = t.shape;
      const int lda = s.trans_a ? s.M : s.K, ldb = s.trans_b ? s.K : s.N;
      core::gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.N);  // warm-up
      const auto start = clock::now();
      for (int i = 0; i < min_runs || std::chrono::duration<double>(clock::now() - start).count() < min_seconds; ++i) {
        const auto t0 = clock::now();
        core::gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.N);
        const double sec = std::chrono::duration<double>(clock::now() - t0).count();
        t.gflops = std::max(t.gflops, s.flops() / sec * 1e-9);
        ++t.runs;
      }
    }
  for (size_t i = 0; i < c.shapes.size(); ++i)
    if (c.shapes[i].gflops > c.shapes[c.best].gflops) c.best = i;
  return c;
}

}  // namespace ladder::apps
