#include "adapters/krona.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "adapters/bottleneck_adapter.h"
#include "core/kernels/activations.h"
#include "core/kernels/gemm.h"

namespace ladder::adapters {

using core::DType;
using core::MemCategory;
using core::Tensor;

namespace {
void check_factors(const std::string& name, int in, int out, int a1, int a2) {
  if (a1 <= 0 || a2 <= 0 || in % a1 != 0 || out % a2 != 0)
    throw std::invalid_argument("krona: '" + name + "' is " + std::to_string(in) + " -> " + std::to_string(out) +
                                "; krona_a1 = " + std::to_string(a1) + " must divide the input width and krona_a2 = " +
                                std::to_string(a2) + " the output width (A [a1, a2], B [in/a1, out/a2])");
}

// dst [D1, D0, D2] = src [D0, D1, D2] permuted (src rows of D2 contiguous).
void swap01(float* dst, const float* src, int D0, int D1, int D2) {
  for (int i = 0; i < D0; ++i)
    for (int j = 0; j < D1; ++j)
      std::copy(src + (size_t(i) * D1 + j) * D2, src + (size_t(i) * D1 + j + 1) * D2, dst + (size_t(j) * D0 + i) * D2);
}
}  // namespace

KronaBranch::KronaBranch(core::ParameterRegistry& reg, const std::string& module, core::Linear& base, int a1, int a2,
                         float scale, uint64_t seed)
    : base_(&base), name_(module), in_(base.in), out_(base.out), a1_(a1), a2_(a2), scale_(scale) {
  if (base.branch) throw std::invalid_argument("krona: '" + module + "' already has a parallel branch (LoRA, DyLoRA or KronA)");
  if (base.parallel != core::Linear::Parallel::none)
    throw std::invalid_argument("krona: '" + module + "' is sharded by tensor parallelism, and a Kronecker product does not "
                                "split by rows or columns of W yet; run KronA with parallel.tp = 1 (krona_b, on the FFN "
                                "block's replicated input and output, works at any tp)");
  check_factors(module, in_, out_, a1, a2);
  init(reg, module, seed);
  base.branch = this;
}

KronaBranch::KronaBranch(core::ParameterRegistry& reg, const std::string& prefix, int in, int out, int a1, int a2,
                         float scale, bool residual, uint64_t seed)
    : name_(prefix), in_(in), out_(out), a1_(a1), a2_(a2), scale_(scale), residual_(residual) {
  check_factors(prefix, in, out, a1, a2);
  if (residual && in != out)
    throw std::invalid_argument("krona: '" + prefix + "' residual needs in == out (got " + std::to_string(in) + " -> " +
                                std::to_string(out) + ")");
  init(reg, prefix, seed);
  if (residual) {
    res_ = &reg.add(prefix + ".krona_res_scale", Tensor::zeros({1}, DType::f32, MemCategory::trainable_weights));
    res_->trainable = true;
  }
}

void KronaBranch::init(core::ParameterRegistry& reg, const std::string& prefix, uint64_t seed) {
  b1_ = in_ / a1_;
  b2_ = out_ / a2_;
  std::mt19937_64 g(seed ^ adapter_name_hash(prefix));
  const float bound = 1.0f / std::sqrt(float(b1_));
  std::uniform_real_distribution<float> u(-bound, bound);
  std::vector<float> b(size_t(b1_) * b2_);
  for (auto& v : b) v = u(g);
  A_ = &reg.add(prefix + ".krona_A", Tensor::zeros({a1_, a2_}, DType::f32, MemCategory::trainable_weights));
  B_ = &reg.add(prefix + ".krona_B", Tensor::from_floats(b, {b1_, b2_}, MemCategory::trainable_weights));
  A_->trainable = B_->trainable = true;
}

const float* KronaBranch::x_contiguous(const float* x, int N, int ldx) {
  if (ldx == in_) return x;
  Tensor::ensure(xc_, {N, in_}, DType::f32, MemCategory::workspace);
  float* xc = xc_.data<float>();
  for (int n = 0; n < N; ++n) std::copy(x + size_t(n) * ldx, x + size_t(n) * ldx + in_, xc + size_t(n) * in_);
  return xc;
}

void KronaBranch::compute_zt(const float* xc, int N) {
  Tensor::ensure(z_, {N * a1_, b2_}, DType::f32, MemCategory::workspace);
  Tensor::ensure(zt_, {a1_, N * b2_}, DType::f32, MemCategory::workspace);
  // Z [N*a1, b2] = X [N*a1, b1] B [b1, b2]
  core::gemm(false, false, N * a1_, b2_, b1_, 1.0f, xc, b1_, B_->w(), b2_, 0.0f, z_.data<float>(), b2_);
  swap01(zt_.data<float>(), z_.data<float>(), N, a1_, b2_);  // [N, a1, b2] -> [a1, N, b2]
}

// y [N, out] (row stride ldy) += s x (A (x) B) (+ s_res x).
void KronaBranch::forward_add(float* y, const float* x, int N, int ldy, int ldx, const core::BranchCall& /*call*/) {
  if (merged_) return;  // the update lives in the base weight
  const float* xc = x_contiguous(x, N, ldx);
  compute_zt(xc, N);
  Tensor::ensure(yt_, {a2_, N * b2_}, DType::f32, MemCategory::workspace);
  float* yt = yt_.data<float>();
  // Yt [a2, N*b2] = s A^T Zt
  core::gemm(true, false, a2_, N * b2_, a1_, scale_, A_->w(), a2_, zt_.data<float>(), N * b2_, 0.0f, yt, N * b2_);
  // y[n, r*b2 + c] += Yt[r, n, c]
  for (int r = 0; r < a2_; ++r)
    for (int n = 0; n < N; ++n) core::add_inplace(y + size_t(n) * ldy + r * b2_, yt + (size_t(r) * N + n) * b2_, b2_);
  if (res_) {
    const float sr = res_->w()[0];
    for (int n = 0; n < N; ++n) {
      float* yr = y + size_t(n) * ldy;
      const float* xr = x + size_t(n) * ldx;
      for (int j = 0; j < in_; ++j) yr[j] += sr * xr[j];
    }
  }
}

// dx [N, in] (row stride ldx) += d/dx; A, B (and s_res) gradients ACCUMULATE. x is the forward input.
void KronaBranch::backward(float* dx, const float* dy, const float* x, int N, int ldx, int ldy) {
  if (merged_) throw std::logic_error("krona: backward through the merged branch '" + name_ + "'");
  if (!x) throw std::logic_error("krona: '" + name_ + "' backward needs the forward input");
  const float* xc = x_contiguous(x, N, ldx);
  compute_zt(xc, N);
  const size_t NB2 = size_t(N) * b2_;
  // dYt [a2, N, b2] from dy [N, a2, b2] (row stride ldy): reuse yt_
  Tensor::ensure(yt_, {a2_, N * b2_}, DType::f32, MemCategory::workspace);
  float* dyt = yt_.data<float>();
  for (int n = 0; n < N; ++n)
    for (int r = 0; r < a2_; ++r)
      std::copy(dy + size_t(n) * ldy + r * b2_, dy + size_t(n) * ldy + (r + 1) * b2_, dyt + (size_t(r) * N + n) * b2_);
  // dA [a1, a2] += s Zt dYt^T
  if (A_->trainable) core::gemm(false, true, a1_, a2_, int(NB2), scale_, zt_.data<float>(), int(NB2), dyt, int(NB2), 1.0f, A_->g(), a2_);
  // dZt [a1, N*b2] = s A dYt  (into zt_, no longer needed), then dZ [N, a1, b2] into z_
  core::gemm(false, false, a1_, int(NB2), a2_, scale_, A_->w(), a2_, dyt, int(NB2), 0.0f, zt_.data<float>(), int(NB2));
  float* dz = z_.data<float>();
  swap01(dz, zt_.data<float>(), a1_, N, b2_);
  // dB [b1, b2] += X^T dZ  (X [N*a1, b1])
  if (B_->trainable) core::gemm(true, false, b1_, b2_, N * a1_, 1.0f, xc, b1_, dz, b2_, 1.0f, B_->g(), b2_);
  if (res_ && res_->trainable) {
    double acc = 0;
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < in_; ++j) acc += double(dy[size_t(n) * ldy + j]) * x[size_t(n) * ldx + j];
    res_->g()[0] += float(acc);
  }
  if (!dx) return;
  // dx [N*a1, b1] += dZ B^T
  if (ldx == in_) {
    core::gemm(false, true, N * a1_, b1_, b2_, 1.0f, dz, b2_, B_->w(), b2_, 1.0f, dx, b1_);
  } else {
    Tensor::ensure(dx_, {N, in_}, DType::f32, MemCategory::workspace);
    float* t = dx_.data<float>();
    core::gemm(false, true, N * a1_, b1_, b2_, 1.0f, dz, b2_, B_->w(), b2_, 0.0f, t, b1_);
    for (int n = 0; n < N; ++n) core::add_inplace(dx + size_t(n) * ldx, t + size_t(n) * in_, in_);
  }
  if (res_) {
    const float sr = res_->w()[0];
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < in_; ++j) dx[size_t(n) * ldx + j] += sr * dy[size_t(n) * ldy + j];
  }
}

std::vector<float> KronaBranch::materialize() const {
  std::vector<float> K(size_t(in_) * out_);
  const float *A = A_->w(), *B = B_->w();
  for (int p = 0; p < a1_; ++p)
    for (int q = 0; q < b1_; ++q)
      for (int r = 0; r < a2_; ++r)
        for (int c = 0; c < b2_; ++c)
          K[size_t(p * b1_ + q) * out_ + r * b2_ + c] = scale_ * A[p * a2_ + r] * B[q * b2_ + c];
  return K;
}

void KronaBranch::add_delta(float sign) {
  if (!base_) throw std::logic_error("krona: '" + name_ + "' is not beside a Linear and cannot merge");
  core::Parameter& w = *base_->weight;
  w.writable_f32();
  const auto K = materialize();  // [in, out]
  float* W = w.w();
  if (base_->layout == core::WeightLayout::out_in) {  // W [out, in]
    for (int i = 0; i < in_; ++i)
      for (int o = 0; o < out_; ++o) W[size_t(o) * in_ + i] += sign * K[size_t(i) * out_ + o];
  } else {  // W [in, out]
    for (size_t k = 0; k < K.size(); ++k) W[k] += sign * K[k];
  }
}

void KronaBranch::merge() {
  if (merged_) return;
  add_delta(1.0f);
  merged_ = true;
}

void KronaBranch::unmerge() {
  if (!merged_) return;
  add_delta(-1.0f);
  merged_ = false;
}

}  // namespace ladder::adapters
