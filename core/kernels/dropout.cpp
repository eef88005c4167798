#include "core/kernels/dropout.h"
#include "core/kernels/hot_kernel.h"

#include <cstring>

#include "core/kernels/dropout_rng.h"

namespace ladder::core {

float counter_uniform(uint64_t seed, uint64_t counter) { return dropout_rng::uniform(dropout_rng::key(seed), counter); }

uint64_t derive_seed(uint64_t base, uint64_t a, uint64_t b, uint64_t c) {
  using dropout_rng::mix64;
  uint64_t h = mix64(base ^ 0x5851F42D4C957F2DULL);
  h = mix64(h + dropout_rng::kGamma * (a + 1));
  h = mix64(h + dropout_rng::kGamma * (b + 2));
  h = mix64(h + dropout_rng::kGamma * (c + 3));
  return h;
}

namespace {
// out = inp * keep / (1 - p) with keep = (u(seed, offset + i) >= p); p == 0 copies, p >= 1 zeroes.
LADDER_HOT_KERNEL void dropout_span(float* out, const float* inp, size_t n, float p, uint64_t seed, uint64_t offset, bool parallel) {
  if (p <= 0.0f) {
    if (out != inp) std::memmove(out, inp, n * sizeof(float));
    return;
  }
  const uint64_t k = dropout_rng::key(seed);
  const uint32_t thr = dropout_rng::keep_threshold(p);
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for simd schedule(static) if (parallel && n >= (1 << 14))
  for (size_t i = 0; i < n; i++)
    out[i] = dropout_rng::select_or_zero(dropout_rng::bits24(k, offset + i) >= thr, inp[i] * keep_scale);
}
}  // namespace

void dropout_forward(float* out, const float* inp, size_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_span(out, inp, n, p, seed, offset, true);
}

void dropout_forward_serial(float* out, const float* inp, size_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_span(out, inp, n, p, seed, offset, false);
}

void dropout_backward_serial(float* dinp, const float* dout, size_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_span(dinp, dout, n, p, seed, offset, false);
}

// dinp OVERWRITTEN with the forward's mask regenerated (same seed/offset).
void dropout_backward(float* dinp, const float* dout, size_t n, float p, uint64_t seed, uint64_t offset) {
  dropout_forward(dinp, dout, n, p, seed, offset);  // the mask-and-scale is its own adjoint
}

}  // namespace ladder::core
