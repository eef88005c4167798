#pragma once
// Dropout with a counter-based RNG: the keep/drop decision for element i is a pure function of
// (seed, offset + i), so the same seed/step gives the same mask on any rank and backward regenerates the
// mask instead of storing it.
#include <cstddef>
#include <cstdint>

namespace ladder::core {

// Which global sample each batch row holds, so dropout counters (and so masks) depend on the sample and
// the step, never on the batch, micro-batch or rank it lands in: row i is sample ids[i], or first + i
// when ids is null. Data-parallel runs at any layout then draw the same masks.
struct SampleKeys {
  const int64_t* ids = nullptr;
  int64_t first = 0;
  int64_t of(int row) const { return ids ? ids[row] : first + row; }
};

// Uniform float in [0, 1) from (seed, counter); a stateless hash (SplitMix64 at position counter).
float counter_uniform(uint64_t seed, uint64_t counter);
// Derives a stream seed from a base seed and tags (step, layer, site...), so call sites never collide.
uint64_t derive_seed(uint64_t base, uint64_t a, uint64_t b = 0, uint64_t c = 0);

// out = inp * keep / (1 - p); p == 0 copies. out may alias inp.
void dropout_forward(float* out, const float* inp, size_t n, float p, uint64_t seed, uint64_t offset);
// dinp = dout * keep / (1 - p), same mask as forward (OVERWRITES dinp; may alias dout).
void dropout_backward(float* dinp, const float* dout, size_t n, float p, uint64_t seed, uint64_t offset);
// dropout_forward on the calling thread only, for callers that already split work across threads.
void dropout_forward_serial(float* out, const float* inp, size_t n, float p, uint64_t seed, uint64_t offset);
void dropout_backward_serial(float* dinp, const float* dout, size_t n, float p, uint64_t seed, uint64_t offset);

}  // namespace ladder::core
