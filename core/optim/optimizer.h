#pragma once
// The optimizer interface the trainer and checkpoints see: a kind name, a step at a given learning rate, a
// step counter, the parameters updated, and the state named per parameter. Each state tensor carries its
// parameter, so a tensor-parallel rank shards and gathers it by that parameter's ShardSpec, and its dtype,
// so a checkpoint stores it as it is held (f32 moments for AdamW; 8-bit codes plus f32 scales for
// quantized optimizers).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/modules/parameter.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

// Hugging Face Trainer's convention: no weight decay for biases and normalisation weights. False for names
// ending in ".bias" or containing "LayerNorm", "layer_norm", "layernorm", "ln_" (GPT-2's ln_1/ln_2/ln_f) or
// ".norm"; true otherwise.
bool default_applies_weight_decay(const std::string& name);

// The hyperparameters every kind understands. Doubles, so that a config value such as 0.9 or 5e-5 rounds
// the way Python's float does.
struct OptimizerConfig {
  double lr = 1e-3;  // base learning rate (a schedule multiplies it; step(lr) takes the lr to use)
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // Whether weight decay applies to the parameter of this name (HF dotted name).
  std::function<bool(const std::string&)> applies_weight_decay = default_applies_weight_decay;
};

// One state tensor of one parameter.
struct OptimizerState {
  std::string name;                  // "<param name>/<slot>": the checkpoint's /optimizer/<param>/<slot>
  const Parameter* param = nullptr;  // the parameter it belongs to
  std::string slot;                  // "exp_avg", "exp_avg_sq", ...
  Tensor* tensor = nullptr;          // the live state; restore with copy_from
  DType dtype = DType::f32;          // tensor->dtype(), as stored in checkpoints
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // The name make_optimizer takes and checkpoints record ("adamw").
  virtual std::string kind() const = 0;
  // One update of every parameter from its gradient, at learning rate `lr` (the schedule's value for this
  // step). Gradients are read, not cleared.
  virtual void step(double lr) = 0;
  // Number of steps taken (torch's state["step"]); the next step is step_count()+1.
  int64_t step_count() const { return step_; }
  // Throws std::invalid_argument for n < 0.
  void set_step_count(int64_t n);

  // The parameters updated, in registration order.
  virtual const std::vector<Parameter*>& parameters() const = 0;
  // Every state tensor, grouped by parameter in parameters() order, slots in a fixed order within each.
  // A state tensor of a sharded parameter is this rank's part, cut like the parameter's value.
  virtual std::vector<OptimizerState> state() = 0;

 protected:
  int64_t step_ = 0;
};

// The kinds make_optimizer builds: {"adamw"}.
const std::vector<std::string>& optimizer_kinds();
// An optimizer of `kind` over the registry's trainable parameters. Throws std::invalid_argument for an
// unknown kind, listing the valid ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, ParameterRegistry& params,
                                          const OptimizerConfig& cfg);

}  // namespace ladder::core
