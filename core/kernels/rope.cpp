#include "core/kernels/rope.h"
#include "core/kernels/hot_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ladder::core {

void RopeTable::ensure(int head_dim, int npos, float b, float factor) {
  if (head_dim == D && b == base && factor == linear_factor && npos <= positions) return;
  if (head_dim <= 0 || head_dim % 2) throw std::invalid_argument("RoPE needs an even head width, got " + std::to_string(head_dim));
  D = head_dim;
  positions = std::max(npos, positions);
  base = b;
  linear_factor = factor;
  const int half = D / 2;
  cos.assign(size_t(positions) * half, 0.0f);
  sin.assign(size_t(positions) * half, 0.0f);
  for (int i = 0; i < half; ++i) {
    // torch: 1.0 / (base ** (arange(0, D, 2).float() / D)), in fp32
    const float expo = float(2 * i) / float(D);
    const float inv = 1.0f / float(std::pow(double(base), double(expo)));
    for (int p = 0; p < positions; ++p) {
      const float angle = (float(p) / linear_factor) * inv;
      cos[size_t(p) * half + i] = float(std::cos(double(angle)));
      sin[size_t(p) * half + i] = float(std::sin(double(angle)));
    }
  }
}

namespace {
template <int Dir>
void rotate(float* x, int rows, int heads, int ld, const int32_t* pos, const RopeTable& t) {
  const int half = t.D / 2;
#pragma omp parallel for schedule(static) if (rows >= 64)
  for (int r = 0; r < rows; ++r) {
    const int p = pos[r];
    if (p < 0 || p >= t.positions) continue;  // checked by the caller; never reached
    const float* c = t.cos.data() + size_t(p) * half;
    const float* s = t.sin.data() + size_t(p) * half;
    for (int h = 0; h < heads; ++h) {
      float* a = x + size_t(r) * ld + size_t(h) * t.D;
      float* b = a + half;
#pragma omp simd
      for (int i = 0; i < half; ++i) {
        const float x1 = a[i], x2 = b[i];
        a[i] = x1 * c[i] - Dir * x2 * s[i];
        b[i] = x2 * c[i] + Dir * x1 * s[i];
      }
    }
  }
}

void check_positions(int rows, const int32_t* pos, const RopeTable& t) {
  for (int r = 0; r < rows; ++r)
    if (pos[r] < 0 || pos[r] >= t.positions)
      throw std::out_of_range("RoPE position " + std::to_string(pos[r]) + " outside the table's " + std::to_string(t.positions));
}
}  // namespace

LADDER_HOT_KERNEL void rope_forward(float* x, int rows, int heads, int ld, const int32_t* pos, const RopeTable& t) {
  check_positions(rows, pos, t);
  rotate<1>(x, rows, heads, ld, pos, t);
}

LADDER_HOT_KERNEL void rope_backward(float* dx, int rows, int heads, int ld, const int32_t* pos, const RopeTable& t) {
  check_positions(rows, pos, t);
  rotate<-1>(dx, rows, heads, ld, pos, t);
}

}  // namespace ladder::core
