#pragma once
// KronA (Edalati et al. 2022), METHODS.md §4.1: a Kronecker-product branch
//   y += s * x (A (x) B),   A [a1, a2],  B [b1, b2],  a1 b1 = in,  a2 b2 = out
// in the row-vector convention (A (x) B is [in, out]). It is never materialised: with x viewed as
// X [N, a1, b1], y viewed as [N, a2, b2] gets s A^T X_n B for every row n:
//   Z  [N*a1, b2]  = X [N*a1, b1] B                         one GEMM
//   Zt [a1, N*b2]  = Z permuted
//   Yt [a2, N*b2]  = s A^T Zt                               one GEMM, then scattered (added) into y
// i.e. N (a1 b1 b2 + a1 a2 b2) multiply-adds instead of N in out. Backward recomputes Z from the Linear's
// input instead of keeping it (Z is as large as x), and needs x for B's gradient (needs_input() is true).
//
// Two uses:
// - beside a Linear (KronA): "<module>.krona_A" [a1, a2] / "<module>.krona_B" [in/a1, out/a2]; merge() adds
//   s (A (x) B) into the frozen weight respecting its layout (cloning a memory-mapped weight first),
//   unmerge() subtracts it; while merged the branch is bypassed.
// - free-standing, parallel to a whole block (KronA^B: `ffn_parallel`, d -> d): "<prefix>.krona_A/B".
//   With `residual` (KronA^B_res) a learnable scalar s_res ("<prefix>.krona_res_scale", init 0) adds
//   s_res * x: Y = FFN(X) + s X (A (x) B) + s_res X. METHODS.md leaves s_res unspecified ([S] "scaled
//   residual"); a learnable scale starting at 0 keeps the initial model equal to the backbone [I].
// Init (PEFT LoKr, METHODS.md §4.1 [C]): A = 0, B ~ kaiming_uniform(a = sqrt 5), bound 1 / sqrt(b1), so the
// branch is exactly zero at step 0 and B's gradient is zero until A moves.
#include <cstdint>
#include <string>

#include "core/modules/linear.h"

namespace ladder::adapters {

class KronaBranch : public core::LinearBranch {
 public:
  // Beside `base`, installed as base.branch (an error if the Linear already has a branch).
  KronaBranch(core::ParameterRegistry& reg, const std::string& module, core::Linear& base, int a1, int a2, float scale,
              uint64_t seed);
  // Free-standing in -> out branch; the caller installs it (e.g. as a block's ffn_parallel).
  KronaBranch(core::ParameterRegistry& reg, const std::string& prefix, int in, int out, int a1, int a2, float scale,
              bool residual, uint64_t seed);

  void forward_add(float* y, const float* x, int N, int ldy, int ldx, const core::BranchCall& call) override;
  void backward(float* dx, const float* dy, const float* x, int N, int ldx, int ldy) override;
  bool needs_input() const override { return true; }

  // Only for a branch beside a Linear.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }
  bool mergeable() const { return base_ != nullptr; }

  float scale() const { return scale_; }
  int in() const { return in_; }
  int out() const { return out_; }
  core::Parameter& A() { return *A_; }
  core::Parameter& B() { return *B_; }
  core::Parameter* res_scale() { return res_; }
  size_t num_params() const { return size_t(a1_) * a2_ + size_t(b1_) * b2_ + (res_ ? 1 : 0); }
  // s (A (x) B) as [in, out] (tests).
  std::vector<float> materialize() const;

 private:
  void init(core::ParameterRegistry& reg, const std::string& prefix, uint64_t seed);
  // Zt [a1, N*b2] = permute(X B) from x [N, in] (row stride ldx).
  const float* x_contiguous(const float* x, int N, int ldx);
  void compute_zt(const float* xc, int N);
  void add_delta(float sign);

  core::Linear* base_ = nullptr;
  std::string name_;
  int in_, out_, a1_, a2_, b1_, b2_;
  float scale_;
  bool residual_ = false, merged_ = false;
  core::Parameter *A_ = nullptr, *B_ = nullptr, *res_ = nullptr;
  // workspace (nothing is saved: backward recomputes from the Linear's input)
  core::Tensor xc_, z_, zt_, yt_, dz_, dx_;
};

}  // namespace ladder::adapters
