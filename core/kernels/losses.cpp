#include "core/kernels/losses.h"
#include "core/kernels/hot_kernel.h"

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "core/kernels/vec_math.h"

namespace ladder::core {

namespace {

// max and log(sum(exp(x/T - max))) of one row, in float with max subtraction; lse = max + log(sum).
struct RowLse {
  float max, lse;
};
inline RowLse row_lse(const float* x, int V, float inv_t) {
  const float m = vec_math::max(x, V) * inv_t;  // inv_t > 0, and rounding is monotonic
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int v = 0; v < V; v++) s += vec_math::exp(x[v] * inv_t - m);
  return {m, m + std::log(s)};
}

int count_targets(const int32_t* targets, int N, int V, int ignore_index, const char* who) {
  int count = 0;
  for (int n = 0; n < N; n++) {
    if (targets[n] == ignore_index) continue;
    if (targets[n] < 0 || targets[n] >= V)
      throw std::out_of_range(std::string(who) + ": target " + std::to_string(targets[n]) + " at row " +
                              std::to_string(n) + " is outside [0, " + std::to_string(V) + ")");
    count++;
  }
  return count;
}

}  // namespace

// logits: [N, V], targets: [N]. Mean of lse - logit[target] over rows whose target != ignore_index (0 when no
// row counts; torch would return NaN there). Row sums are combined in double.
LADDER_HOT_KERNEL float cross_entropy_forward(const float* logits, const int32_t* targets, int N, int V, int ignore_index,
                            int* count_out) {
  int count = count_targets(targets, N, V, ignore_index, "cross_entropy_forward");
  if (count_out) *count_out = count;
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int n = 0; n < N; n++) {
    if (targets[n] == ignore_index) continue;
    const float* x = logits + size_t(n) * V;
    total += double(row_lse(x, V, 1.0f).lse) - double(x[targets[n]]);
  }
  return count > 0 ? float(total / count) : 0.0f;
}

// dlogits OVERWRITTEN: (softmax - onehot) * grad_scale / count; ignored rows get 0.
LADDER_HOT_KERNEL void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, int N, int V, int ignore_index,
                            float grad_scale) {
  int count = count_targets(targets, N, V, ignore_index, "cross_entropy_backward");
  float g = count > 0 ? grad_scale / count : 0.0f;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* x = logits + size_t(n) * V;
    float* d = dlogits + size_t(n) * V;
    if (targets[n] == ignore_index) {
      for (int v = 0; v < V; v++) d[v] = 0.0f;
      continue;
    }
    float lse = row_lse(x, V, 1.0f).lse;
#pragma omp simd
    for (int v = 0; v < V; v++) d[v] = vec_math::exp(x[v] - lse) * g;
    d[targets[n]] -= g;
  }
}

// Mean over n of (pred - target)^2.
LADDER_HOT_KERNEL float mse_forward(const float* pred, const float* target, int n) {
  double total = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : total) if (n >= (1 << 14))
  for (int i = 0; i < n; i++) {
    double d = double(pred[i]) - double(target[i]);
    total += d * d;
  }
  return n > 0 ? float(total / n) : 0.0f;
}

// dpred OVERWRITTEN: 2 (pred - target) / n * grad_scale.
LADDER_HOT_KERNEL void mse_backward(float* dpred, const float* pred, const float* target, int n, float grad_scale) {
  float g = n > 0 ? 2.0f * grad_scale / n : 0.0f;
#pragma omp parallel for simd schedule(static) if (n >= (1 << 14))
  for (int i = 0; i < n; i++) dpred[i] = (pred[i] - target[i]) * g;
}

// T^2 * mean_rows sum_v p_t (log p_t - log p_s), p = softmax(logits / T); log-probs are formed as x/T - lse, so
// they stay finite and 0 * log 0 never appears.
LADDER_HOT_KERNEL float kl_div_forward(const float* student_logits, const float* teacher_logits, int N, int V, float temperature) {
  const float inv_t = 1.0f / temperature;
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int n = 0; n < N; n++) {
    const float* s = student_logits + size_t(n) * V;
    const float* t = teacher_logits + size_t(n) * V;
    float lse_s = row_lse(s, V, inv_t).lse, lse_t = row_lse(t, V, inv_t).lse;
    float row = 0.0f;
#pragma omp simd reduction(+ : row)
    for (int v = 0; v < V; v++) {
      float lt = t[v] * inv_t - lse_t, ls = s[v] * inv_t - lse_s;
      row += vec_math::exp(lt) * (lt - ls);
    }
    total += row;
  }
  return N > 0 ? float(double(temperature) * temperature * total / N) : 0.0f;
}

// dstudent OVERWRITTEN: T / N * (p_s - p_t) * grad_scale.
LADDER_HOT_KERNEL void kl_div_backward(float* dstudent, const float* student_logits, const float* teacher_logits, int N, int V,
                     float temperature, float grad_scale) {
  const float inv_t = 1.0f / temperature;
  const float g = N > 0 ? temperature * grad_scale / N : 0.0f;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float* s = student_logits + size_t(n) * V;
    const float* t = teacher_logits + size_t(n) * V;
    float* d = dstudent + size_t(n) * V;
    float lse_s = row_lse(s, V, inv_t).lse, lse_t = row_lse(t, V, inv_t).lse;
#pragma omp simd
    for (int v = 0; v < V; v++) d[v] = (vec_math::exp(s[v] * inv_t - lse_s) - vec_math::exp(t[v] * inv_t - lse_t)) * g;
  }
}

void causal_lm_targets(int32_t* out, const int32_t* ids, const float* mask, int B, int T, int ignore_index) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      const int n = b * T + t;
      const bool has_next = t + 1 < T && (!mask || mask[n + 1] != 0.0f);
      out[n] = has_next ? ids[n + 1] : ignore_index;
    }
}

}  // namespace ladder::core
