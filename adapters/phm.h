#pragma once
// PHM layer with rank-one ("LPHM") weights and Compacter (Karimi Mahabadi et al. 2021), METHODS.md §3.2:
//   H = sum_i A_i (x) W_i,  W_i = s_i t_i^T,  y = x H + b
// with A_i [n, n] (the "slow" rule), s_i [in/n] ("W_left"), t_i [out/n] ("W_right"), H [in, out].
// H is never materialised: with x viewed as X [N, n, in/n],
//   u[N, p, i] = sum_q X[N, p, q] s_i[q]          one GEMM  [N*n, in/n] x [in/n, n]
//   v[N, r, i] = sum_p u[N, p, i] A_i[p, r]        N * n^3 multiply-adds
//   y[N, r, c] = sum_i v[N, r, i] t_i[c]           one GEMM  [N*n, n] x [n, out/n]
// i.e. N n (in + out) + N n^3 multiply-adds instead of N in out (d=768, m=24, n=4: 3,232 vs 18,432 per row).
// Compacter shares one rule A [n, n, n] ("phm_rule", A[i, p, r] = A_i[p, r]) between every PHM layer of
// the model; each layer ACCUMULATES its contribution into the rule's gradient.
// Init (rabeehk/compacter inits.py / layers.py, METHODS.md §3.2 [C]): s_i and t_i are glorot-uniform with
// gain sqrt(2), applied per i to W_left[i] [in/n, 1] and W_right[i] [1, out/n] as torch's xavier_uniform_
// does (bound = sqrt(2) sqrt(6 / (1 + in/n)) resp. sqrt(2) sqrt(6 / (1 + out/n))); rule ~ N(0, 1e-4); b = 0.
// Parameters: "<name>.W_left" [n, in/n], "<name>.W_right" [n, out/n], "<name>.b" [out].
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/bottleneck_adapter.h"

namespace ladder::adapters {

// Registers the shared rule "phm_rule" [n, n, n] ~ N(0, init_std), trainable. One per model.
core::Parameter& add_phm_rule(core::ParameterRegistry& reg, int n, uint64_t seed, float init_std = 1e-4f);

class PhmLinear : public AdapterProjection {
 public:
  // `rule` is the shared [n, n, n] rule (not owned). in and out must be divisible by n.
  PhmLinear(core::ParameterRegistry& reg, const std::string& name, int in, int out, int n, core::Parameter& rule,
            uint64_t seed);
  int in() const override { return in_; }
  int out() const override { return out_; }
  void forward(float* y, const float* x, int N, bool save, bool accumulate) override;
  void backward(float* dx, const float* dy, const float* x, int N) override;
  size_t num_params() const override { return size_t(in_) + out_ + out_; }

  // H [in, out] = sum_i A_i (x) s_i t_i^T, materialised (tests and export).
  std::vector<float> materialize() const;
  core::Parameter& left() { return *S_; }
  core::Parameter& right() { return *T_; }
  core::Parameter& bias() { return *b_; }

 private:
  std::string name_;
  core::Parameter& rule_;
  core::Parameter *S_ = nullptr, *T_ = nullptr, *b_ = nullptr;
  int in_, out_, n_;
  core::Tensor u_, v_;    // [N*n, n] saved by a saving forward
  core::Tensor uw_, vw_;  // a non-saving forward's own buffers
  core::Tensor du_, dv_;  // backward workspace
};

// A Compacter adapter: bottleneck d -> m = d / reduction -> d with PHM down and up projections sharing
// `rule`; parameters "<site>.adapter.{down,up}.{W_left,W_right,b}". d and m must be divisible by n.
std::unique_ptr<BottleneckAdapter> make_compacter_adapter(core::ParameterRegistry& reg, const std::string& site, int d,
                                                          int reduction, core::Parameter& rule, AdapterActivation act,
                                                          uint64_t seed);

}  // namespace ladder::adapters
