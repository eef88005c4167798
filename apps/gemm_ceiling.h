#pragma once
// The ceiling `ladder bench` divides by: the best GFLOP/s this machine's BLAS reaches on the GEMMs a
// model's training step is made of (its linear layers' forward, input-gradient and weight-gradient
// products at the bench's B*T) and on a large square product, each timed until it is stable.
#include <string>
#include <vector>

namespace ladder::apps {

// C[M,N] = op(A) @ op(B) with K the inner size, row-major as core::gemm takes it.
struct GemmShape {
  bool trans_a = false, trans_b = false;
  int M = 0, N = 0, K = 0;
  std::string role;  // what the model uses it for ("forward d->ffn", "square"), for the report
  std::string text() const;  // "4096x1536x384 NT"
  double flops() const { return 2.0 * double(M) * N * K; }
};

struct GemmTiming {
  GemmShape shape;
  double gflops = 0;  // the fastest run's
  int runs = 0;
};

struct GemmCeiling {
  std::vector<GemmTiming> shapes;  // every shape timed, in the order given
  size_t best = 0;                 // index of the fastest
  double gflops() const { return shapes.empty() ? 0.0 : shapes[best].gflops; }
};

// The linear layers' three products (Y = X W^T, dX = dY W, dW = dY^T X) for every distinct (in, out)
// weight shape of a transformer of width d and FFN width ffn (fused_qkv: GPT-2's d -> 3d), at each of
// the row counts `rows` (B*T of the phases benchmarked), plus an n x n x n square product (n > 0).
std::vector<GemmShape> transformer_gemm_shapes(int d, int ffn, bool fused_qkv, const std::vector<int>& rows, int square_n);

// Times every shape: `rounds` passes over all shapes (so that a disturbance from another process hits
// one pass, not one shape), each pass running a shape for at least `min_seconds` and `min_runs` runs.
// A shape's figure is its fastest run: interference only ever slows a run down.
GemmCeiling measure_gemm_ceiling(const std::vector<GemmShape>& shapes, double min_seconds, int min_runs, int rounds);

}  // namespace ladder::apps
