#pragma once
// The one parameter registry every module writes into and the optimizer, gradient sync, checkpoints and the
// memory report read. Parameters are named by their Hugging Face dotted names and carry a trainable flag.
// Frozen parameters never get gradient buffers; trainable ones get an f32 copy of their value and a slot in
// one contiguous gradient buffer (so data parallelism can all-reduce it in a few calls).
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/modules/tensor_parallel.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

struct Parameter {
  std::string name;
  Tensor value;  // f32 when trainable; frozen values may be any float dtype (e.g. memory-mapped bf16)
  Tensor grad;   // defined only for trainable parameters
  bool trainable = false;
  // Tensor parallelism: which part of the full tensor this rank holds (replicated by default), and whether
  // the gradient this rank computes is only its share of a sum over the tp group (LoRA's A beside a
  // column-parallel layer): such gradients are summed over the group before the optimizer step.
  ShardSpec shard;
  bool tp_partial_grad = false;
  // A frozen parameter registered without its value (a backbone loaded with WeightValues::deferred, which
  // never runs: e.g. a side network trained from an activation store) reads the whole stored tensor here,
  // as f32 and accounted while the returned tensor lives; `value` stays undefined. Empty otherwise.
  std::function<Tensor()> read_stored;

  float* w() const { return value.data<float>(); }
  // The value as writable f32 memory of its own: a memory-mapped or 16-bit frozen value is first copied to
  // an owned f32 tensor (a method folding itself into the weight writes here).
  float* writable_f32();
  // Gradient pointer, or nullptr when frozen: kernels skip weight-gradient work on nullptr.
  float* g() const {
    if (!trainable) return nullptr;
    if (!grad.defined()) throw std::logic_error("parameter '" + name + "' is trainable but its gradient was never allocated (call ParameterRegistry::allocate_gradients)");
    return grad.data<float>();
  }
};

class ParameterRegistry {
 public:
  // Registers `value` under `name` (frozen). Throws if the name is taken.
  Parameter& add(const std::string& name, Tensor value);
  Parameter* find(const std::string& name);
  Parameter& at(const std::string& name);  // throws naming the parameter
  const std::vector<std::unique_ptr<Parameter>>& all() const { return params_; }
  std::vector<Parameter*> trainable() const;

  // Marks a parameter trainable (its value becomes an owned f32 tensor tagged trainable_weights).
  // Gradient buffers are (re)built by allocate_gradients().
  void set_trainable(const std::string& name, bool on);
  void set_all_trainable(bool on);
  // One contiguous f32 buffer for every trainable gradient, in registration order; zero-filled.
  void allocate_gradients();
  void zero_grad();
  const Tensor& gradient_buffer() const { return grad_buffer_; }

  // Number of scalar parameters (whole tensors, also when sharded or deferred).
  size_t count(bool trainable_only) const;
  // Releases the values of every frozen parameter (their memory maps close when nothing else holds them),
  // for runs that no longer need the frozen model (a side network trained from an activation store).
  // Shapes are forgotten too; touching a released parameter afterwards is a bug.
  void release_frozen_values();
  // Re-stores every frozen parameter that `pick` accepts as `dtype` (f32, bf16 or f16): an owned tensor
  // tagged frozen_weights replaces the value (a memory map closes once nothing else reads it). Trainable
  // and deferred parameters are left alone. Returns how many were converted; throws for another dtype.
  size_t store_frozen_as(DType dtype, const std::function<bool(const Parameter&)>& pick);

 private:
  std::vector<std::unique_ptr<Parameter>> params_;
  std::map<std::string, Parameter*> by_name_;
  Tensor grad_buffer_;
};

}  // namespace ladder::core
