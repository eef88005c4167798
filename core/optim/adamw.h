#pragma once
// AdamW with exactly torch.optim.AdamW's update (the single-tensor CPU path, amsgrad off), over every
// trainable parameter of a ParameterRegistry. Per element, in f32 and in PyTorch's operation order:
//   p  = p * (1 - lr*wd)                       decoupled weight decay, before the Adam update (skipped when
//                                              the parameter is excluded from decay)
//   m  = m + (1-b1) * (g - m)                  torch's lerp_(g, 1-b1)
//   v  = v * b2 + (1-b2) * g * g
//   p  = p + (-lr/(1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)     eps added after sqrt(v_hat)
// with t the 1-based step and the scalar factors computed in double, as Python does, then rounded to f32.
// Hyperparameters are doubles (not floats) so that a config value such as 0.9 or 5e-5 rounds the way
// Python's float does; `1 - beta1` from a float 0.9 would already differ from PyTorch in the last bit.
//
// State: exp_avg and exp_avg_sq, f32 and tagged optimizer_state, each one contiguous buffer laid out like
// the registry's gradient buffer (registration order), allocated once in the constructor. step() allocates
// nothing.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/modules/parameter.h"
#include "core/optim/optimizer.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

// AdamW's hyperparameters are exactly the common ones.
struct AdamWConfig : OptimizerConfig {};

class AdamW final : public Optimizer {
 public:
  // Takes the registry's trainable parameters as they are now; their gradients must be allocated before
  // step(). Throws std::invalid_argument for hyperparameters torch.optim.AdamW rejects.
  AdamW(ParameterRegistry& params, AdamWConfig cfg);

  std::string kind() const override { return "adamw"; }
  // One update of every trainable parameter from its gradient, at learning rate `lr` (the schedule's value
  // for this step). Gradients are read, not cleared. The next step uses bias corrections for step_count()+1.
  void step(double lr) override;
  void step() { step(cfg_.lr); }

  // Slots "exp_avg" and "exp_avg_sq" (f32, shaped like the parameter) of every trainable parameter, in
  // registration order. The tensors are views into the state buffers: restore with copy_from.
  std::vector<OptimizerState> state() override;
  // The same as (name, tensor) pairs.
  std::vector<std::pair<std::string, Tensor*>> state_tensors();

  const AdamWConfig& config() const { return cfg_; }
  // The parameters updated, and whether each gets weight decay.
  const std::vector<Parameter*>& parameters() const override { return params_; }
  bool decays(size_t i) const { return decay_.at(i) != 0; }
  // exp_avg / exp_avg_sq of every parameter, flat [numel of all trainable parameters].
  const Tensor& exp_avg_buffer() const { return exp_avg_buf_; }
  const Tensor& exp_avg_sq_buffer() const { return exp_avg_sq_buf_; }

 private:
  AdamWConfig cfg_;
  std::vector<Parameter*> params_;
  std::vector<char> decay_;
  std::vector<int64_t> offsets_;  // params_.size()+1 prefix sums of numel
  Tensor exp_avg_buf_, exp_avg_sq_buf_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // per-parameter views, shaped like the parameter
};

}  // namespace ladder::core
