#pragma once
// Bottleneck adapter (Houlsby et al. 2019) as a sublayer hook (METHODS.md §3.1):
//   h <- h + up(act(down(h))),   down: d -> m,  up: m -> d,  m = d / reduction
// on a sublayer's output after its dropout, before the residual add (the Compacter repo's and
// AdapterHub's placement). The two projections are dense Linears (Houlsby / Pfeiffer, here) or PHM layers
// (Compacter, adapters/phm.h); both implement AdapterProjection.
//
// Init (AdapterInit::bert, the default): AdapterHub's "bert" init, every dense weight ~ N(0, 0.02) and
// biases 0 (adapter-hub/adapters `init_bert_weights`, METHODS.md §3.1 [C]). The initial model is then close
// to, not equal to, the backbone: the adapter adds about 0.02^2 * sqrt(d m) * |h| per element (about 1e-3
// relative for BERT-base, m = 48). AdapterInit::zero_up zeroes the up projection instead (AdapterHub's
// "mam_adapter" init) for an exact identity at step 0.
// Dense parameters are "<prefix>.adapter.down.weight" [m, d], ".down.bias" [m], ".up.weight" [d, m],
// ".up.bias" [d] (weights stored [out, in], as nn.Linear).
#include <cstdint>
#include <memory>
#include <string>

#include "core/modules/parameter.h"
#include "core/modules/sublayer_hook.h"

namespace ladder::adapters {

enum class AdapterActivation { relu, swish, gelu, gelu_new };
// "relu", "swish" (or "silu"), "gelu" (erf), "gelu_new" (tanh). Unknown names list the valid ones.
AdapterActivation parse_adapter_activation(const std::string& name);
// out = act(z), n elements (out may alias z only for relu/swish: gelu reads z again).
void adapter_activation_forward(float* out, const float* z, size_t n, AdapterActivation act);
// dz = da * act'(z): OVERWRITTEN (may alias da).
void adapter_activation_backward(float* dz, const float* da, const float* z, size_t n, AdapterActivation act);

enum class AdapterInit { bert, zero_up };

// One projection of an adapter: y = x P + b over N contiguous rows.
class AdapterProjection {
 public:
  virtual ~AdapterProjection() = default;
  virtual int in() const = 0;
  virtual int out() const = 0;
  // y [N, out] OVERWRITTEN, or ACCUMULATED when `accumulate`; x [N, in]. `save`: backward will run.
  virtual void forward(float* y, const float* x, int N, bool save, bool accumulate) = 0;
  // dx [N, in] ACCUMULATES (skipped when null); the projection's own gradients ACCUMULATE. x is the
  // forward input, dy [N, out].
  virtual void backward(float* dx, const float* dy, const float* x, int N) = 0;
  // Number of scalar parameters this projection registered (a shared PHM rule not included).
  virtual size_t num_params() const = 0;
};

// y = x W^T + b, W [out, in] ("<name>.weight"), b [out] ("<name>.bias"), registered trainable.
class DenseProjection : public AdapterProjection {
 public:
  // weight ~ N(0, init_std) (0 = zeros), bias 0.
  DenseProjection(core::ParameterRegistry& reg, const std::string& name, int in, int out, float init_std,
                  uint64_t seed);
  int in() const override { return in_; }
  int out() const override { return out_; }
  void forward(float* y, const float* x, int N, bool save, bool accumulate) override;
  void backward(float* dx, const float* dy, const float* x, int N) override;
  size_t num_params() const override { return size_t(in_) * out_ + out_; }
  core::Parameter& weight() { return *W_; }
  core::Parameter& bias() { return *b_; }

 private:
  core::Parameter *W_ = nullptr, *b_ = nullptr;
  int in_, out_;
};

class BottleneckAdapter : public core::SublayerHook {
 public:
  // `name` is the adapter's dotted prefix ("encoder.layer.3.output.adapter"), for errors.
  BottleneckAdapter(std::string name, std::unique_ptr<AdapterProjection> down, std::unique_ptr<AdapterProjection> up,
                    AdapterActivation act);
  // A dense adapter registered under "<site>.adapter.{down,up}.{weight,bias}", m = d / reduction (d must be
  // divisible by reduction).
  static std::unique_ptr<BottleneckAdapter> dense(core::ParameterRegistry& reg, const std::string& site, int d,
                                                  int reduction, AdapterActivation act, AdapterInit init,
                                                  uint64_t seed);

  void forward(float* h, int N, const core::BranchCall& call) override;
  void backward(float* dh, int N) override;

  const std::string& name() const { return name_; }
  int d() const { return d_; }
  int m() const { return m_; }
  size_t num_params() const { return down_->num_params() + up_->num_params(); }
  AdapterProjection& down() { return *down_; }
  AdapterProjection& up() { return *up_; }

 private:
  std::string name_;
  std::unique_ptr<AdapterProjection> down_, up_;
  AdapterActivation act_;
  int d_, m_;
  // saved by a forward with call.save: the hook input, the bottleneck pre-activation and activation
  core::Tensor x_;     // [N, d]
  core::Tensor z_;     // [N, m]
  core::Tensor a_;     // [N, m]
  core::Tensor da_;    // [N, m] backward workspace
  core::Tensor zw_, aw_;  // [N, m] a non-saving forward's own buffers, so evaluation between a saving
                          // forward and its backward leaves the saved ones intact
  int saved_rows_ = -1;   // N of the last saving forward (-1: none)
};

// FNV-1a of a name: a stable per-module stream for initialisation.
uint64_t adapter_name_hash(const std::string& s);

}  // namespace ladder::adapters
