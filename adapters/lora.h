#pragma once
// LoRA (Hu et al. 2021) and DyLoRA (Valipour et al. 2023) as a branch beside a frozen Linear:
//   y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A [r, in], B [out, r]
// A ~ kaiming_uniform(a=sqrt(5)) (bound 1/sqrt(in)), B = 0, as microsoft/LoRA and PEFT. Parameters are
// registered as "<module>.lora_A" / "<module>.lora_B" (PEFT's names without its "base_model.model."
// prefix and ".weight" suffix).
// DyLoRA: with an active rank b <= r, forward uses A[:b], B[:, :b] with scale alpha / b (the paper code's
// sqrt(r/b) on each factor times alpha/r); in "frozen" mode only row b-1 of A and column b-1 of B learn.
// Beside a tensor-parallel Linear the factors are split the Megatron way (see the constructor); init and
// dropout masks are those of the unsplit branch, so every layout trains the same model.
#include <cstdint>
#include <string>

#include "core/modules/linear.h"

namespace ladder::adapters {

struct LoraOptions {
  int r = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;
};

class LoraBranch : public core::LinearBranch {
 public:
  LoraBranch(core::ParameterRegistry& reg, const std::string& module, core::Linear& base, const LoraOptions& opt,
             uint64_t init_seed);
  void forward_add(float* y, const float* x, int N, int ldy, int ldx, const core::BranchCall& call) override;
  void backward(float* dx, const float* dy, const float* x, int N, int ldx, int ldy) override;
  bool needs_input() const override { return true; }

  // DyLoRA: rank used by the next steps (1..r); frozen = only the newest rank's row/column gets gradient.
  void set_active_rank(int b, bool frozen);
  int active_rank() const { return b_; }
  // Adds (merge) or subtracts (unmerge) scale * B A into the base weight; the branch is bypassed while merged.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }
  float scale() const { return alpha_ / float(b_); }
  core::Parameter& A() { return *A_; }
  core::Parameter& B() { return *B_; }

 private:
  void add_delta(float sign);
  core::Linear& base_;
  core::Parameter *A_ = nullptr, *B_ = nullptr;
  int r_, b_;
  int in_full_ = 0, in_col0_ = 0;  // tensor parallelism: the full input width and this rank's first column
  float alpha_, dropout_;
  bool frozen_ = false, merged_ = false;
  uint64_t site_;
  // saved for backward
  core::Tensor u_;   // [N, b] = dropout(x) A[:b]^T
  core::Tensor xd_;  // [N, in] dropout(x), only when dropout is active
  core::Tensor du_;  // [N, b] workspace
  core::Tensor dxd_; // [N, in] workspace (dropout backward)
  bool dropped_ = false;
  core::BranchCall last_;
  core::StepOptions last_opt_;
  core::TokenBatch last_batch_;
};

}  // namespace ladder::adapters
