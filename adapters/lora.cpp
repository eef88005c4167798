#include "adapters/lora.h"

#include <cmath>
#include <random>
#include <stdexcept>

#include "core/kernels/activations.h"
#include "core/kernels/dropout.h"
#include "core/kernels/gemm.h"

namespace ladder::adapters {

using core::DType;
using core::MemCategory;
using core::Tensor;

namespace {
uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: a stable per-module dropout stream
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace

LoraBranch::LoraBranch(core::ParameterRegistry& reg, const std::string& module, core::Linear& base,
                       const LoraOptions& opt, uint64_t init_seed)
    : base_(base), r_(opt.r), b_(opt.r), alpha_(opt.alpha), dropout_(opt.dropout), site_(hash_name(module)) {
  if (opt.r <= 0) throw std::invalid_argument("lora: rank r must be positive (got " + std::to_string(opt.r) + ")");
  if (opt.dropout < 0 || opt.dropout >= 1) throw std::invalid_argument("lora: dropout must be in [0, 1)");
  if (base.branch) throw std::invalid_argument("lora: '" + module + "' already has a parallel branch");
  const int in = base.in, out = base.out;
  // Tensor parallelism: beside a column-parallel W (this rank's output rows) A is replicated and B holds the
  // same rows; beside a row-parallel W (this rank's input columns) A holds those columns and B is
  // replicated. The replicated factor's gradient is then this rank's share of a sum over the group.
  const core::TensorParallelGroup* tp = core::tp_active(base.tp) ? base.tp : nullptr;
  const bool column = tp && base.parallel == core::Linear::Parallel::column;
  const bool row = tp && base.parallel == core::Linear::Parallel::row;
  const core::ShardSpec& ws = base.weight->shard;
  const int out_dim = base.layout == core::WeightLayout::out_in ? 0 : 1;
  in_full_ = row ? int(ws.full.at(size_t(1 - out_dim))) : in;
  if (row) in_col0_ = int(ws.range().first);
  // kaiming_uniform_(a=sqrt(5)) on [r, in]: bound = sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(in), drawn for the
  // whole A so that every layout starts from the same factors.
  std::mt19937_64 g(init_seed ^ site_);
  std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(in_full_)), 1.0f / std::sqrt(float(in_full_)));
  std::vector<float> a(size_t(r_) * in_full_);
  for (auto& v : a) v = u(g);
  core::ShardSpec a_spec, b_spec;
  a_spec.full = {r_, in_full_};
  b_spec.full = {column ? ws.full.at(size_t(out_dim)) : int64_t(out), r_};
  if (row) a_spec = {1, ws.index, ws.parts, 1, {r_, in_full_}};
  if (column) b_spec = {0, ws.index, ws.parts, ws.blocks, b_spec.full};
  Tensor a_t = Tensor::empty({r_, in}, DType::f32, MemCategory::trainable_weights);
  core::extract_shard(a_t.data<float>(), a.data(), a_spec, a_spec.index);
  A_ = &reg.add(module + ".lora_A", std::move(a_t));
  B_ = &reg.add(module + ".lora_B", Tensor::zeros({out, r_}, DType::f32, MemCategory::trainable_weights));
  A_->shard = a_spec;
  B_->shard = b_spec;
  A_->tp_partial_grad = column;
  B_->tp_partial_grad = row;
  A_->trainable = true;
  B_->trainable = true;
  base.branch = this;
}

void LoraBranch::set_active_rank(int b, bool frozen) {
  if (b < 1 || b > r_) throw std::out_of_range("lora: rank " + std::to_string(b) + " outside 1.." + std::to_string(r_));
  if (merged_) throw std::logic_error("lora: unmerge before changing the rank");
  b_ = b;
  frozen_ = frozen;
}

void LoraBranch::forward_add(float* y, const float* x, int N, int ldy, int ldx, const core::BranchCall& call) {
  if (merged_) return;  // the update already lives in the base weight
  const int in = base_.in, out = base_.out, b = b_;
  const bool save = call.save;
  const MemCategory cat = save ? MemCategory::activations : MemCategory::workspace;
  dropped_ = call.opt && call.opt->training && dropout_ > 0;
  const float* xd = x;
  int ldxd = ldx;
  if (dropped_) {
    if (ldx != in || !call.batch) throw std::logic_error("lora: dropout needs a contiguous input and the batch");
    Tensor::ensure(xd_, {N, in}, DType::f32, cat);
    if (in_full_ != in)  // this rank's columns of a row-parallel input: draw their part of the full mask
      core::sequence_dropout_columns_forward(xd_.data<float>(), x, *call.batch, in, in_full_, in_col0_, call.max_positions,
                                             dropout_, core::derive_seed(call.opt->seed, site_), call.opt->samples);
    else
      core::sequence_dropout_forward(xd_.data<float>(), x, *call.batch, in, call.max_positions, dropout_,
                                     core::derive_seed(call.opt->seed, site_), call.opt->samples);
    xd = xd_.data<float>();
    ldxd = in;
    last_opt_ = *call.opt;
    last_batch_ = *call.batch;
    last_ = call;
  }
  Tensor::ensure(u_, {N, b}, DType::f32, cat);
  float* u = u_.data<float>();
  core::gemm(false, true, N, b, in, 1.0f, xd, ldxd, A_->w(), in, 0.0f, u, b);
  core::gemm(false, true, N, out, b, scale(), u, b, B_->w(), r_, 1.0f, y, ldy);
}

void LoraBranch::backward(float* dx, const float* dy, const float* x, int N, int ldx, int ldy) {
  if (merged_) throw std::logic_error("lora: backward through a merged branch");
  const int in = base_.in, out = base_.out, b = b_;
  const float s = scale();
  Tensor::ensure(du_, {N, b}, DType::f32, MemCategory::workspace);
  float* du = du_.data<float>();
  const float* u = u_.data<float>();
  const float* xd = dropped_ ? xd_.data<float>() : x;
  const int ldxd = dropped_ ? in : ldx;
  // du = s * dy B[:, :b]
  core::gemm(false, false, N, b, out, s, dy, ldy, B_->w(), r_, 0.0f, du, b);
  if (frozen_) {  // only the newest rank learns: row b-1 of A, column b-1 of B
    if (A_->trainable) core::gemm(true, false, 1, in, N, 1.0f, du + (b - 1), b, xd, ldxd, 1.0f, A_->g() + size_t(b - 1) * in, in);
    if (B_->trainable) core::gemm(true, false, out, 1, N, s, dy, ldy, u + (b - 1), b, 1.0f, B_->g() + (b - 1), r_);
  } else {
    if (A_->trainable) core::gemm(true, false, b, in, N, 1.0f, du, b, xd, ldxd, 1.0f, A_->g(), in);
    if (B_->trainable) core::gemm(true, false, out, b, N, s, dy, ldy, u, b, 1.0f, B_->g(), r_);
  }
  if (!dx) return;
  if (!dropped_) {
    core::gemm(false, false, N, in, b, 1.0f, du, b, A_->w(), in, 1.0f, dx, ldx);
    return;
  }
  Tensor::ensure(dxd_, {N, in}, DType::f32, MemCategory::workspace);
  float* dxd = dxd_.data<float>();
  core::gemm(false, false, N, in, b, 1.0f, du, b, A_->w(), in, 0.0f, dxd, in);
  if (in_full_ != in)
    core::sequence_dropout_columns_backward(dxd, dxd, last_batch_, in, in_full_, in_col0_, last_.max_positions, dropout_,
                                            core::derive_seed(last_opt_.seed, site_), last_opt_.samples);
  else
    core::sequence_dropout_backward(dxd, dxd, last_batch_, in, last_.max_positions, dropout_,
                                    core::derive_seed(last_opt_.seed, site_), last_opt_.samples);
  core::add_inplace(dx, dxd, size_t(N) * in);
}

void LoraBranch::add_delta(float sign) {
  core::Parameter& w = *base_.weight;
  w.writable_f32();
  const int in = base_.in, out = base_.out, b = b_;
  if (base_.layout == core::WeightLayout::out_in)  // W [out, in] += s B A
    core::gemm(false, false, out, in, b, sign * scale(), B_->w(), r_, A_->w(), in, 1.0f, w.w(), in);
  else  // W [in, out] += s A^T B^T
    core::gemm(true, true, in, out, b, sign * scale(), A_->w(), in, B_->w(), r_, 1.0f, w.w(), out);
}

void LoraBranch::merge() {
  if (merged_) return;
  add_delta(1.0f);
  merged_ = true;
}

void LoraBranch::unmerge() {
  if (!merged_) return;
  add_delta(-1.0f);
  merged_ = false;
}

}  // namespace ladder::adapters
