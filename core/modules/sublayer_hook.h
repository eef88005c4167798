#pragma once
// The seam for trainable modules inserted at fixed points of a transformer block (bottleneck adapters,
// Compacter): a hook maps the sublayer output h [N, C] (after its dropout, before the residual add) to
// h + f(h) in place, and in backward maps dL/d(output) to dL/d(h) in place. It keeps what it needs.
#include "core/modules/linear_branch.h"

namespace ladder::core {

class SublayerHook {
 public:
  virtual ~SublayerHook() = default;
  virtual void forward(float* h, int N, const BranchCall& call) = 0;
  // dh [N, C]: in = dL/d(hook output), out = dL/d(hook input). Accumulates the hook's own gradients.
  virtual void backward(float* dh, int N) = 0;
};

}  // namespace ladder::core
