#pragma once
// Inline counter RNG shared by dropout and attention kernels (internal to core/kernels).
// u(seed, i) = top 24 bits of mix64(key(seed) + i * gamma) / 2^24, key(seed) = mix64(seed): SplitMix64's
// output for state key(seed) at position i. One finalizer per element (three 64-bit multiplies, which AVX2
// emulates) keeps mask generation a small share of the step; streams of two seeds are the same Weyl
// sequence at offsets 2^64 apart on average, so they never overlap at the counters we use (< 2^48).
#include <bit>
#include <cmath>
#include <cstdint>

namespace ladder::core::dropout_rng {

inline constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

// SplitMix64 finalizer (Stafford variant 13).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint64_t key(uint64_t seed) { return mix64(seed ^ 0xD1B54A32D192ED03ULL); }

// The generator's state for (key, counter); the state of counter + 1 is this plus kGamma (mod 2^64), so a
// loop over consecutive counters adds instead of multiplying (AVX2 emulates 64-bit multiplies).
inline uint64_t weyl(uint64_t k, uint64_t counter) { return k + counter * kGamma; }

// 24 random bits from a state, and for (key, counter).
inline uint32_t bits24_at(uint64_t state) { return uint32_t(mix64(state) >> 40); }
inline uint32_t bits24(uint64_t k, uint64_t counter) { return bits24_at(weyl(k, counter)); }

// Uniform in [0, 1): bits24 / 2^24 (exact in float).
inline float uniform(uint64_t k, uint64_t counter) { return float(bits24(k, counter)) * (1.0f / 16777216.0f); }

// An element is kept iff uniform >= p, i.e. iff bits24 >= keep_threshold(p); the integer form lets the
// compiler vectorise the mask (p * 2^24 is exact in double).
inline uint32_t keep_threshold(float p) {
  double t = std::ceil(double(p) * 16777216.0);
  return t <= 0 ? 0u : t >= 16777216.0 ? 16777216u : uint32_t(t);
}

// x if keep else +0, through an integer mask (GCC will not if-convert a float select under -ftrapping-math).
inline float select_or_zero(bool keep, float x) {
  return std::bit_cast<float>(std::bit_cast<int32_t>(x) & -int32_t(keep));
}

}  // namespace ladder::core::dropout_rng
