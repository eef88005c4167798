#pragma once
// The seam for trainable additions that run in parallel to a (usually frozen) Linear: LoRA, DyLoRA,
// KronA. A Linear with a branch computes y = x W^T + b + branch(x); the branch owns its parameters (in the
// registry) and whatever it must keep for backward.
#include "core/modules/step_context.h"

namespace ladder::core {

// What a branch needs to know about the step it runs in.
struct BranchCall {
  const StepOptions* opt = nullptr;    // training (dropout), seed, first_row
  bool save = false;                   // backward will run: keep what it needs
  const TokenBatch* batch = nullptr;   // geometry, for per-sample dropout counters
  int max_positions = 0;
};

class LinearBranch {
 public:
  virtual ~LinearBranch() = default;
  // y [N, out] (row stride ldy) += branch(x), x [N, in] (row stride ldx).
  virtual void forward_add(float* y, const float* x, int N, int ldy, int ldx, const BranchCall& call) = 0;
  // dx [N, in] += d branch / dx (dx may be null: nothing below needs it); accumulates the branch's own
  // parameter gradients. x is the forward input.
  virtual void backward(float* dx, const float* dy, const float* x, int N, int ldx, int ldy) = 0;
  // Whether backward reads x (so the Linear's input must be kept).
  virtual bool needs_input() const = 0;
};

}  // namespace ladder::core
