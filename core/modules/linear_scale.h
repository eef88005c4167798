#pragma once
// The seam for multiplicative additions to a (usually frozen) Linear: a per-feature scale of its input or of
// its output, as (IA)^3 learns them. A Linear with a scale computes y = s_out(x' W^T + b + branch(x)) with
// x' = s_in(x); the scale owns its parameters and whatever it keeps for backward. A branch sees the
// unscaled input.
#include "core/modules/linear_branch.h"

namespace ladder::core {

class LinearScale {
 public:
  virtual ~LinearScale() = default;
  // x [N, in] (row stride ldx) -> the scaled input the weight multiplies ([N, in], stride *ld_out), or x
  // itself (and ldx) when this scale leaves the input alone. The result lives until the next call.
  virtual const float* scale_input(const float* x, int N, int ldx, int* ld_out) {
    *ld_out = ldx;
    (void)N;
    return x;
  }
  // y [N, out] (row stride ldy) is scaled in place, after the bias and the branch; keeps the unscaled y
  // for backward when call.save.
  virtual void scale_output(float* /*y*/, int /*N*/, int /*ldy*/, const BranchCall& /*call*/) {}
  // The gradient of the unscaled output from dy (stride ldy): a buffer ([N, out], stride *ld_out) that lives
  // until the next call, or dy itself. Accumulates the output scale's gradient.
  virtual const float* backward_output(const float* dy, int N, int ldy, int* ld_out) {
    *ld_out = ldy;
    (void)N;
    return dy;
  }
  // g [N, in] (stride ldg) holds d loss / d x' on entry and d loss / d x on return; x is the forward
  // input. Accumulates the input scale's gradient.
  virtual void backward_input(float* /*g*/, const float* /*x*/, int /*N*/, int /*ldg*/, int /*ldx*/) {}
  // Whether the input is scaled (backward then reads x and needs d loss / d x').
  virtual bool scales_input() const { return false; }
};

}  // namespace ladder::core
