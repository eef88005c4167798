#include "adapters/bottleneck_adapter.h"

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

uint64_t adapter_name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

AdapterActivation parse_adapter_activation(const std::string& name) {
  if (name == "relu") return AdapterActivation::relu;
  if (name == "swish" || name == "silu") return AdapterActivation::swish;
  if (name == "gelu") return AdapterActivation::gelu;
  if (name == "gelu_new") return AdapterActivation::gelu_new;
  throw std::invalid_argument("unknown adapter activation '" + name + "'; valid: relu, swish, silu, gelu, gelu_new");
}

void adapter_activation_forward(float* out, const float* z, size_t n, AdapterActivation act) {
  switch (act) {
    case AdapterActivation::relu:
      for (size_t i = 0; i < n; ++i) out[i] = z[i] > 0 ? z[i] : 0.0f;
      break;
    case AdapterActivation::swish:  // z * sigmoid(z)
      for (size_t i = 0; i < n; ++i) out[i] = z[i] / (1.0f + std::exp(-z[i]));
      break;
    case AdapterActivation::gelu: core::gelu_forward(out, z, n, core::GeluKind::erf); break;
    case AdapterActivation::gelu_new: core::gelu_forward(out, z, n, core::GeluKind::tanh); break;
  }
}

// dz OVERWRITTEN.
void adapter_activation_backward(float* dz, const float* da, const float* z, size_t n, AdapterActivation act) {
  switch (act) {
    case AdapterActivation::relu:
      for (size_t i = 0; i < n; ++i) dz[i] = z[i] > 0 ? da[i] : 0.0f;
      break;
    case AdapterActivation::swish:  // d/dz z s(z) = s (1 + z (1 - s))
      for (size_t i = 0; i < n; ++i) {
        const float s = 1.0f / (1.0f + std::exp(-z[i]));
        dz[i] = da[i] * s * (1.0f + z[i] * (1.0f - s));
      }
      break;
    case AdapterActivation::gelu: core::gelu_backward(dz, da, z, n, core::GeluKind::erf); break;
    case AdapterActivation::gelu_new: core::gelu_backward(dz, da, z, n, core::GeluKind::tanh); break;
  }
}

// ---------------------------------------------------------------------------------------------------------

DenseProjection::DenseProjection(core::ParameterRegistry& reg, const std::string& name, int in, int out,
                                 float init_std, uint64_t seed)
    : in_(in), out_(out) {
  if (in <= 0 || out <= 0) throw std::invalid_argument("adapter projection '" + name + "': empty shape");
  std::vector<float> w(size_t(in) * out, 0.0f);
  if (init_std > 0) {
    std::mt19937_64 g(seed ^ adapter_name_hash(name));
    std::normal_distribution<float> nd(0.0f, init_std);
    for (auto& v : w) v = nd(g);
  }
  W_ = &reg.add(name + ".weight", Tensor::from_floats(w, {out, in}, MemCategory::trainable_weights));
  b_ = &reg.add(name + ".bias", Tensor::zeros({out}, DType::f32, MemCategory::trainable_weights));
  W_->trainable = true;
  b_->trainable = true;
}

void DenseProjection::forward(float* y, const float* x, int N, bool /*save*/, bool accumulate) {
  // y [N, out] = x [N, in] W^T (+ y) + b
  core::gemm(false, true, N, out_, in_, 1.0f, x, in_, W_->w(), in_, accumulate ? 1.0f : 0.0f, y, out_);
  core::add_bias(y, b_->w(), N, out_);
}

void DenseProjection::backward(float* dx, const float* dy, const float* x, int N) {
  if (W_->trainable) core::gemm(true, false, out_, in_, N, 1.0f, dy, out_, x, in_, 1.0f, W_->g(), in_);  // dW += dy^T x
  if (b_->trainable) core::bias_backward(b_->g(), dy, N, out_);
  if (dx) core::gemm(false, false, N, in_, out_, 1.0f, dy, out_, W_->w(), in_, 1.0f, dx, in_);  // dx += dy W
}

// ---------------------------------------------------------------------------------------------------------

BottleneckAdapter::BottleneckAdapter(std::string name, std::unique_ptr<AdapterProjection> down,
                                     std::unique_ptr<AdapterProjection> up, AdapterActivation act)
    : name_(std::move(name)), down_(std::move(down)), up_(std::move(up)), act_(act) {
  if (!down_ || !up_) throw std::invalid_argument("adapter '" + name_ + "': missing projection");
  d_ = down_->in();
  m_ = down_->out();
  if (up_->in() != m_ || up_->out() != d_)
    throw std::invalid_argument("adapter '" + name_ + "': down is " + std::to_string(d_) + "->" + std::to_string(m_) +
                                " but up is " + std::to_string(up_->in()) + "->" + std::to_string(up_->out()));
}

std::unique_ptr<BottleneckAdapter> BottleneckAdapter::dense(core::ParameterRegistry& reg, const std::string& site,
                                                            int d, int reduction, AdapterActivation act,
                                                            AdapterInit init, uint64_t seed) {
  const std::string name = site + ".adapter";
  if (reduction <= 0 || d % reduction != 0)
    throw std::invalid_argument("adapter '" + name + "': width " + std::to_string(d) +
                                " is not divisible by adapter_reduction " + std::to_string(reduction));
  const int m = d / reduction;
  auto down = std::make_unique<DenseProjection>(reg, name + ".down", d, m, 0.02f, seed);
  auto up = std::make_unique<DenseProjection>(reg, name + ".up", m, d, init == AdapterInit::bert ? 0.02f : 0.0f, seed);
  return std::make_unique<BottleneckAdapter>(name, std::move(down), std::move(up), act);
}

void BottleneckAdapter::forward(float* h, int N, const core::BranchCall& call) {
  const bool save = call.save;
  const MemCategory cat = save ? MemCategory::activations : MemCategory::workspace;
  Tensor& zt = save ? z_ : zw_;
  Tensor& at = save ? a_ : aw_;
  Tensor::ensure(zt, {N, m_}, DType::f32, cat);
  Tensor::ensure(at, {N, m_}, DType::f32, cat);
  float* z = zt.data<float>();
  float* a = at.data<float>();
  down_->forward(z, h, N, save, /*accumulate=*/false);  // z = h Wd^T + bd   [N, m]
  adapter_activation_forward(a, z, size_t(N) * m_, act_);
  if (save) {  // the down projection's weight gradient reads the hook input
    Tensor::ensure(x_, {N, d_}, DType::f32, MemCategory::activations);
    std::copy(h, h + size_t(N) * d_, x_.data<float>());
    saved_rows_ = N;
  }
  up_->forward(h, a, N, save, /*accumulate=*/true);  // h += a Wu^T + bu
}

// dh: in = dL/d(h + f(h)), out = dL/dh = dh + J_f^T dh.
void BottleneckAdapter::backward(float* dh, int N) {
  if (saved_rows_ != N)
    throw std::logic_error("adapter '" + name_ + "': backward without a saving forward of " + std::to_string(N) + " rows");
  Tensor::ensure(da_, {N, m_}, DType::f32, MemCategory::workspace);
  float* da = da_.data<float>();
  std::fill(da, da + size_t(N) * m_, 0.0f);
  up_->backward(da, dh, a_.data<float>(), N);                                  // da = dh Wu (+ Wu's grads)
  adapter_activation_backward(da, da, z_.data<float>(), size_t(N) * m_, act_);  // dz
  down_->backward(dh, da, x_.data<float>(), N);                                // dh += dz Wd (+ Wd's grads)
}

}  // namespace ladder::adapters
