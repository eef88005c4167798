#pragma once
// A dense layer over N rows: y = x W^T + b. Hugging Face stores nn.Linear weights [out, in] and GPT-2's
// Conv1D weights [in, out]; the layout flag picks the GEMM transpose so weights are used as stored.
// Frozen weights get no gradient work: backward only computes dx unless the weight is trainable. The weight
// is read through a WeightView, so a frozen one may be held in another form than dense f32.
#include "core/modules/linear_branch.h"
#include "core/modules/linear_scale.h"
#include "core/modules/parameter.h"
#include "core/modules/tensor_parallel_regions.h"
#include "core/modules/weight_view.h"

namespace ladder::core {

struct Linear {
  Parameter* weight = nullptr;
  Parameter* bias = nullptr;  // may be null
  int in = 0, out = 0;
  WeightLayout layout = WeightLayout::out_in;
  LinearBranch* branch = nullptr;  // optional parallel branch (not owned), e.g. LoRA
  LinearScale* scale = nullptr;    // optional input or output scale (not owned), e.g. (IA)^3
  // Tensor parallelism (see tensor_parallel.h). column: W holds this rank's output features, nothing to
  // reduce here (the owner all-reduces the input gradient). row: W holds this rank's input features; the
  // output is a partial sum that forward completes with one all-reduce over `tp` before adding the bias.
  enum class Parallel { none, column, row };
  Parallel parallel = Parallel::none;
  TensorParallelGroup* tp = nullptr;

  // y [N, out] (row stride ldy, default out) is OVERWRITTEN; x [N, in] (row stride ldx, default in).
  // Row-parallel: x holds this rank's input features and y (contiguous) comes out complete.
  // `call` is handed to the branch (null = inference without dropout).
  void forward(float* y, const float* x, int N, int ldy = 0, int ldx = 0, const BranchCall* call = nullptr) const;
  // dx [N, in] is OVERWRITTEN (or ACCUMULATED when accumulate_dx) unless null; dW/db ACCUMULATE when
  // trainable, for which x must be the forward input.
  void backward(float* dx, const float* dy, const float* x, int N, bool accumulate_dx = false, int ldx = 0,
                int ldy = 0) const;
  // Whether backward reads x (so forward must keep it).
  bool needs_input() const {
    return weight->trainable || (branch && branch->needs_input()) || (scale && scale->scales_input());
  }
  double flops(int N) const { return 2.0 * N * in * out; }
  WeightView view() const { return WeightView(*weight, in, out, layout); }
};

}  // namespace ladder::core
