#pragma once
// Gradient-norm clipping over the registry's one contiguous gradient buffer, as
// torch.nn.utils.clip_grad_norm_(params, max_norm) (L2 norm, error_if_nonfinite=False).
// The norm is accumulated in double (torch sums per-tensor f32 norms; the two agree to ~1e-7 relative).
// In data-parallel training call these after the gradient all-reduce, so every rank clips alike.
#include <cstdint>

#include "core/modules/parameter.h"
#include "core/modules/tensor_parallel.h"

namespace ladder::core {

// L2 norm of every trainable gradient; 0 when no gradients are allocated.
float global_grad_norm(const ParameterRegistry& params);
// Same over a raw f32 buffer of n elements.
double l2_norm(const float* x, int64_t n);

// Returns the total norm before clipping. When max_norm / (norm + 1e-6) < 1, every gradient is scaled by
// that coefficient (rounded to f32, as torch multiplies by an f32 tensor). A non-finite norm is returned
// with the gradients left untouched (torch would fill them with NaN): the caller should skip the step.
float clip_grad_norm(ParameterRegistry& params, float max_norm);
// The same under tensor parallelism: each rank holds part of every sharded gradient, so their squared norms
// are summed over `tp` (one all-reduce) while replicated gradients count once. Every rank of the group gets
// the same norm and coefficient. tp null or of size 1: clip_grad_norm above.
float clip_grad_norm(ParameterRegistry& params, float max_norm, TensorParallelGroup* tp);

}  // namespace ladder::core
