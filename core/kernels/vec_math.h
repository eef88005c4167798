#pragma once
// Branch-free float exp / erf / tanh that GCC vectorises inside `#pragma omp simd` loops. glibc's expf/erff/
// tanhf are not vectorised without -ffast-math, and under the default -ftrapping-math GCC will not if-convert
// float compares, so range checks here are integer compares on order-preserving float bits. Internal to
// core/kernels.
//   exp:  Cephes expf (Cody-Waite reduction, degree-6 polynomial), ~1 ulp; exactly 0 below -87.33.
//   erf:  Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7 in exact arithmetic, < 5e-7 in float), the formula
//         PyTorch's vectorised CPU erf uses.
//   tanh: 1 - 2 / (exp(2x) + 1), absolute error < 3e-7.
#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>

namespace ladder::core::vec_math {

// Float bits mapped to int32 so that integer order equals float order (NaN aside).
constexpr int32_t ordered_bits(float x) {
  int32_t b = std::bit_cast<int32_t>(x);
  return b ^ ((b >> 31) & 0x7FFFFFFF);
}
constexpr float from_ordered_bits(int32_t k) { return std::bit_cast<float>(k ^ ((k >> 31) & 0x7FFFFFFF)); }

// Largest of x[0, n), n >= 1 (no NaN), as an integer max over ordered bits so that it vectorises.
inline float max(const float* x, int n) {
  int32_t k = INT32_MIN;
#pragma omp simd reduction(max : k)
  for (int i = 0; i < n; i++) k = std::max(k, ordered_bits(x[i]));
  return from_ordered_bits(k);
}

inline float exp(float x) {
  constexpr int32_t lo = ordered_bits(-87.33f), hi = ordered_bits(88.37f);
  int32_t k = ordered_bits(x);
  const int32_t keep = -int32_t(k >= lo);  // all ones, or 0 below -87.33: the result is exactly 0 there
  k = std::max(lo, std::min(k, hi));
  const float xc = from_ordered_bits(k);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to the nearest integer
  const float t = xc * 1.44269504088896341f + kMagic;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kMagic);
  const float n = t - kMagic;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * (r * r) + r + 1.0f;
  const float y = e * std::bit_cast<float>((ni + 127) << 23);
  return std::bit_cast<float>(std::bit_cast<int32_t>(y) & keep);
}

inline float erf(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  const float ax = std::bit_cast<float>(bits & 0x7FFFFFFF);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * vec_math::exp(-ax * ax);
  return std::bit_cast<float>(std::bit_cast<int32_t>(y) | (bits & int32_t(0x80000000u)));  // sign of x
}

inline float tanh(float x) { return 1.0f - 2.0f / (vec_math::exp(2.0f * x) + 1.0f); }

}  // namespace ladder::core::vec_math
