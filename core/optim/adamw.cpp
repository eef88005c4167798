#include "core/optim/adamw.h"

#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ladder::core {

namespace {

// The f32 scalars of one step, rounded from the double values Python computes.
struct StepScalars {
  float lerp_w;       // 1 - beta1 (torch's lerp weight)
  float lerp_w_comp;  // 1 - lerp_w in f32, for torch's large-weight lerp form
  bool lerp_small;    // |lerp_w| < 0.5 picks torch's lerp form
  float beta2, one_minus_beta2;
  float bc2_sqrt;     // sqrt(1 - beta2^t)
  float eps;
  float neg_step;     // -lr / (1 - beta1^t)
};

#if defined(__AVX__)
inline __m256 sqrt_lanes(__m256 x) { return _mm256_sqrt_ps(x); }
#endif
inline float sqrt_lanes(float x) { return std::sqrt(x); }

// One element (T = float) or 8 lanes (T = __m256), in torch's operation order; p, m, v UPDATED. Scalars
// broadcast over lanes (GCC vector extensions), so both widths run the identical arithmetic.
template <bool kLerpSmall, class T>
inline void adamw_lanes(T& p, T g, T& m, T& v, float decay, const StepScalars& s) {
  if constexpr (kLerpSmall)
    m = m + s.lerp_w * (g - m);  // torch lerp, weight < 0.5
  else
    m = g - (g - m) * s.lerp_w_comp;
  v = v * s.beta2 + s.one_minus_beta2 * g * g;
  const T denom = sqrt_lanes(v) / s.bc2_sqrt + s.eps;
  p = p * decay + (s.neg_step * m) / denom;
}

// One parameter's elements [0, n). p, m, v UPDATED in place; g read. GCC does not vectorise std::sqrt
// unless built with -fno-math-errno, so the AVX path spells the vector width out.
template <bool kLerpSmall>
void adamw_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                  int64_t n, float decay, const StepScalars& s) {
  int64_t i = 0;
#if defined(__AVX__)
  for (; i + 8 <= n; i += 8) {
    __m256 pi = _mm256_loadu_ps(p + i), mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
    adamw_lanes<kLerpSmall>(pi, _mm256_loadu_ps(g + i), mi, vi, decay, s);
    _mm256_storeu_ps(p + i, pi);
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
  }
#endif
  for (; i < n; i++) adamw_lanes<kLerpSmall>(p[i], g[i], m[i], v[i], decay, s);
}

// Below this many elements a step runs on one thread (the fork costs more than the update).
constexpr int64_t kParallelMinElements = 1 << 15;

}  // namespace

AdamW::AdamW(ParameterRegistry& params, AdamWConfig cfg) : cfg_(std::move(cfg)) {
  // torch.optim.Adam's argument checks, with the same wording.
  if (!(cfg_.lr >= 0)) throw std::invalid_argument("AdamW: Invalid learning rate: " + std::to_string(cfg_.lr));
  if (!(cfg_.eps >= 0)) throw std::invalid_argument("AdamW: Invalid epsilon value: " + std::to_string(cfg_.eps));
  if (!(cfg_.beta1 >= 0 && cfg_.beta1 < 1))
    throw std::invalid_argument("AdamW: Invalid beta parameter at index 0: " + std::to_string(cfg_.beta1));
  if (!(cfg_.beta2 >= 0 && cfg_.beta2 < 1))
    throw std::invalid_argument("AdamW: Invalid beta parameter at index 1: " + std::to_string(cfg_.beta2));
  if (!(cfg_.weight_decay >= 0))
    throw std::invalid_argument("AdamW: Invalid weight_decay value: " + std::to_string(cfg_.weight_decay));
  if (!cfg_.applies_weight_decay) cfg_.applies_weight_decay = default_applies_weight_decay;

  params_ = params.trainable();
  offsets_.assign(1, 0);
  for (Parameter* p : params_) {
    if (p->value.dtype() != DType::f32)
      throw std::invalid_argument("AdamW: trainable parameter '" + p->name + "' is not f32");
    decay_.push_back(cfg_.applies_weight_decay(p->name) ? 1 : 0);
    offsets_.push_back(offsets_.back() + p->value.numel());
  }
  const int64_t total = offsets_.back();
  exp_avg_buf_ = Tensor::zeros({total}, DType::f32, MemCategory::optimizer_state);
  exp_avg_sq_buf_ = Tensor::zeros({total}, DType::f32, MemCategory::optimizer_state);
  for (size_t i = 0; i < params_.size(); i++) {
    const int64_t n = offsets_[i + 1] - offsets_[i];
    exp_avg_.push_back(exp_avg_buf_.slice(offsets_[i], n).view(params_[i]->value.shape()));
    exp_avg_sq_.push_back(exp_avg_sq_buf_.slice(offsets_[i], n).view(params_[i]->value.shape()));
  }
}

std::vector<OptimizerState> AdamW::state() {
  std::vector<OptimizerState> out;
  out.reserve(2 * params_.size());
  for (size_t i = 0; i < params_.size(); i++) {
    const std::string& p = params_[i]->name;
    out.push_back({p + "/exp_avg", params_[i], "exp_avg", &exp_avg_[i], exp_avg_[i].dtype()});
    out.push_back({p + "/exp_avg_sq", params_[i], "exp_avg_sq", &exp_avg_sq_[i], exp_avg_sq_[i].dtype()});
  }
  return out;
}

std::vector<std::pair<std::string, Tensor*>> AdamW::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (const OptimizerState& s : state()) out.emplace_back(s.name, s.tensor);
  return out;
}

void AdamW::step(double lr) {
  // Checks first, so that a bad registry throws before any parameter moved.
  for (size_t i = 0; i < params_.size(); i++) {
    const Parameter& p = *params_[i];
    if (!p.trainable || !p.grad.defined())
      throw std::logic_error("AdamW: parameter '" + p.name +
                             "' has no gradient (was it frozen, or ParameterRegistry::allocate_gradients() not "
                             "called, after the optimizer was built?)");
    if (p.value.numel() != exp_avg_[i].numel() || p.grad.numel() != p.value.numel())
      throw std::logic_error("AdamW: parameter '" + p.name + "' changed size after the optimizer was built");
  }

  step_++;
  const double t = double(step_);  // torch's state["step"] is a float tensor; Python computes beta**t in double
  const double bc1 = 1.0 - std::pow(cfg_.beta1, t);
  const double bc2 = 1.0 - std::pow(cfg_.beta2, t);
  StepScalars s;
  s.lerp_w = float(1.0 - cfg_.beta1);
  s.lerp_w_comp = 1.0f - s.lerp_w;
  s.lerp_small = std::fabs(s.lerp_w) < 0.5f;
  s.beta2 = float(cfg_.beta2);
  s.one_minus_beta2 = float(1.0 - cfg_.beta2);
  s.bc2_sqrt = float(std::pow(bc2, 0.5));
  s.eps = float(cfg_.eps);
  s.neg_step = float(-(lr / bc1));
  const float decay_factor = float(1.0 - lr * cfg_.weight_decay);

  // Each thread takes one contiguous range of the flattened parameter space (balanced however the
  // parameter sizes are spread) and walks the parameters that overlap it.
  const int64_t total = offsets_.back();
#pragma omp parallel if (total >= kParallelMinElements)
  {
    const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t chunk = ((total + nt - 1) / nt + 15) / 16 * 16;  // whole 64-byte lines per thread
    const int64_t begin = std::min(total, tid * chunk), end = std::min(total, begin + chunk);
    size_t i = size_t(std::upper_bound(offsets_.begin(), offsets_.end(), begin) - offsets_.begin()) - 1;
    for (int64_t pos = begin; pos < end && i < params_.size(); i++) {
      const int64_t lo = pos - offsets_[i], hi = std::min(end, offsets_[i + 1]) - offsets_[i];
      const Parameter& p = *params_[i];
      float* pw = p.w() + lo;
      const float* pg = p.g() + lo;
      float* pm = exp_avg_[i].data<float>() + lo;
      float* pv = exp_avg_sq_[i].data<float>() + lo;
      const float decay = decay_[i] ? decay_factor : 1.0f;
      if (s.lerp_small)
        adamw_update<true>(pw, pg, pm, pv, hi - lo, decay, s);
      else
        adamw_update<false>(pw, pg, pm, pv, hi - lo, decay, s);
      pos = offsets_[i] + hi;
    }
  }
}

}  // namespace ladder::core
