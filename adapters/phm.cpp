#include "adapters/phm.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"

namespace ladder::adapters {

using core::DType;
using core::MemCategory;
using core::Tensor;

core::Parameter& add_phm_rule(core::ParameterRegistry& reg, int n, uint64_t seed, float init_std) {
  if (n <= 0) throw std::invalid_argument("phm_rule: compacter_n must be positive (got " + std::to_string(n) + ")");
  std::mt19937_64 g(seed ^ adapter_name_hash("phm_rule"));
  std::normal_distribution<float> nd(0.0f, init_std);
  std::vector<float> a(size_t(n) * n * n);
  for (auto& v : a) v = nd(g);
  core::Parameter& p = reg.add("phm_rule", Tensor::from_floats(a, {n, n, n}, MemCategory::trainable_weights));
  p.trainable = true;
  return p;
}

PhmLinear::PhmLinear(core::ParameterRegistry& reg, const std::string& name, int in, int out, int n,
                     core::Parameter& rule, uint64_t seed)
    : name_(name), rule_(rule), in_(in), out_(out), n_(n) {
  if (n <= 0 || in % n != 0 || out % n != 0)
    throw std::invalid_argument("PHM layer '" + name + "': in " + std::to_string(in) + " and out " +
                                std::to_string(out) + " must be divisible by compacter_n " + std::to_string(n));
  if (rule.value.numel() != int64_t(n) * n * n)
    throw std::invalid_argument("PHM layer '" + name + "': the shared rule has " + std::to_string(rule.value.numel()) +
                                " values, not n^3 = " + std::to_string(n * n * n));
  const int inb = in / n, outb = out / n;
  std::mt19937_64 g(seed ^ adapter_name_hash(name));
  // xavier_uniform_(gain sqrt 2) on W_left[i] [inb, 1] (fan_in 1, fan_out inb) and W_right[i] [1, outb].
  auto glorot = [&](int count, int fan) {
    const float bound = std::sqrt(2.0f) * std::sqrt(6.0f / float(1 + fan));
    std::uniform_real_distribution<float> u(-bound, bound);
    std::vector<float> v(static_cast<size_t>(count));
    for (auto& x : v) x = u(g);
    return v;
  };
  S_ = &reg.add(name + ".W_left", Tensor::from_floats(glorot(in, inb), {n, inb}, MemCategory::trainable_weights));
  T_ = &reg.add(name + ".W_right", Tensor::from_floats(glorot(out, outb), {n, outb}, MemCategory::trainable_weights));
  b_ = &reg.add(name + ".b", Tensor::zeros({out}, DType::f32, MemCategory::trainable_weights));
  S_->trainable = T_->trainable = b_->trainable = true;
}

void PhmLinear::forward(float* y, const float* x, int N, bool save, bool accumulate) {
  const int n = n_, inb = in_ / n, outb = out_ / n, rows = N * n;
  const MemCategory cat = save ? MemCategory::activations : MemCategory::workspace;
  Tensor& ut = save ? u_ : uw_;
  Tensor& vt = save ? v_ : vw_;
  Tensor::ensure(ut, {rows, n}, DType::f32, cat);
  Tensor::ensure(vt, {rows, n}, DType::f32, cat);
  float* u = ut.data<float>();
  float* v = vt.data<float>();
  const float* A = rule_.w();
  // u[(N,p), i] = X[(N,p), :] . s_i
  core::gemm(false, true, rows, n, inb, 1.0f, x, inb, S_->w(), inb, 0.0f, u, n);
  // v[(N,r), i] = sum_p u[(N,p), i] A[i, p, r]
  for (int row = 0; row < N; ++row) {
    const float* ur = u + size_t(row) * n * n;
    float* vr = v + size_t(row) * n * n;
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < n; ++i) {
        float acc = 0.0f;
        for (int p = 0; p < n; ++p) acc += ur[p * n + i] * A[(i * n + p) * n + r];
        vr[r * n + i] = acc;
      }
  }
  // y[(N,r), c] (+)= sum_i v[(N,r), i] t_i[c], then + b
  core::gemm(false, false, rows, outb, n, 1.0f, v, n, T_->w(), outb, accumulate ? 1.0f : 0.0f, y, outb);
  core::add_bias(y, b_->w(), N, out_);
}

void PhmLinear::backward(float* dx, const float* dy, const float* x, int N) {
  const int n = n_, inb = in_ / n, outb = out_ / n, rows = N * n;
  if (u_.numel() != int64_t(rows) * n)
    throw std::logic_error("PHM layer '" + name_ + "': backward without a saving forward of " + std::to_string(N) + " rows");
  const float* u = u_.data<float>();
  const float* v = v_.data<float>();
  const float* A = rule_.w();
  Tensor::ensure(du_, {rows, n}, DType::f32, MemCategory::workspace);
  Tensor::ensure(dv_, {rows, n}, DType::f32, MemCategory::workspace);
  float* du = du_.data<float>();
  float* dv = dv_.data<float>();
  if (b_->trainable) core::bias_backward(b_->g(), dy, N, out_);
  // dT[i, c] += sum_(N,r) v[(N,r), i] dY[(N,r), c];  dv = dY T^T
  if (T_->trainable) core::gemm(true, false, n, outb, rows, 1.0f, v, n, dy, outb, 1.0f, T_->g(), outb);
  core::gemm(false, true, rows, n, outb, 1.0f, dy, outb, T_->w(), outb, 0.0f, dv, n);
  // dA[i, p, r] += sum_N u[N, p, i] dv[N, r, i];  du[N, p, i] = sum_r A[i, p, r] dv[N, r, i]
  float* gA = rule_.g();
  for (int row = 0; row < N; ++row) {
    const float* ur = u + size_t(row) * n * n;
    const float* dvr = dv + size_t(row) * n * n;
    float* dur = du + size_t(row) * n * n;
    for (int p = 0; p < n; ++p)
      for (int i = 0; i < n; ++i) {
        float acc = 0.0f;
        const float* Aip = A + (i * n + p) * n;
        for (int r = 0; r < n; ++r) acc += Aip[r] * dvr[r * n + i];
        dur[p * n + i] = acc;
      }
    if (gA)
      for (int i = 0; i < n; ++i)
        for (int p = 0; p < n; ++p) {
          const float up = ur[p * n + i];
          float* g = gA + (i * n + p) * n;
          for (int r = 0; r < n; ++r) g[r] += up * dvr[r * n + i];
        }
  }
  // dS[i, q] += sum_(N,p) du[(N,p), i] X[(N,p), q];  dx += du S
  if (S_->trainable) core::gemm(true, false, n, inb, rows, 1.0f, du, n, x, inb, 1.0f, S_->g(), inb);
  if (dx) core::gemm(false, false, rows, inb, n, 1.0f, du, n, S_->w(), inb, 1.0f, dx, inb);
}

std::vector<float> PhmLinear::materialize() const {
  const int n = n_, inb = in_ / n, outb = out_ / n;
  std::vector<float> H(size_t(in_) * out_, 0.0f);
  const float *A = rule_.w(), *S = S_->w(), *T = T_->w();
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < n; ++p)
      for (int r = 0; r < n; ++r)
        for (int q = 0; q < inb; ++q)
          for (int c = 0; c < outb; ++c)
            H[size_t(p * inb + q) * out_ + r * outb + c] += A[(i * n + p) * n + r] * S[i * inb + q] * T[i * outb + c];
  return H;
}

std::unique_ptr<BottleneckAdapter> make_compacter_adapter(core::ParameterRegistry& reg, const std::string& site, int d,
                                                          int reduction, core::Parameter& rule, AdapterActivation act,
                                                          uint64_t seed) {
  const std::string name = site + ".adapter";
  const int n = int(rule.value.dim(0));
  if (reduction <= 0 || d % reduction != 0)
    throw std::invalid_argument("compacter '" + name + "': width " + std::to_string(d) +
                                " is not divisible by adapter_reduction " + std::to_string(reduction));
  const int m = d / reduction;
  if (d % n != 0 || m % n != 0)
    throw std::invalid_argument("compacter '" + name + "': width " + std::to_string(d) + " and bottleneck " +
                                std::to_string(m) + " must be divisible by compacter_n " + std::to_string(n));
  auto down = std::make_unique<PhmLinear>(reg, name + ".down", d, m, n, rule, seed);
  auto up = std::make_unique<PhmLinear>(reg, name + ".up", m, d, n, rule, seed);
  return std::make_unique<BottleneckAdapter>(name, std::move(down), std::move(up), act);
}

}  // namespace ladder::adapters
