#pragma once
// Finite-difference gradient checks used by every op and module test.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace ladder::test {

struct GradCheckResult {
  double max_abs_err = 0;   // max |analytic - numeric|
  double max_rel_err = 0;   // max |a - n| / max(|a|, |n|, floor)
  size_t worst = 0;         // index of the worst element
  size_t checked = 0;
};

// Perturbs x[i] by +-eps (in double-evaluated loss) for up to max_checks indices spread over [0, n) and
// compares the central difference of `loss` with analytic[i]. `loss` must recompute from x each call.
GradCheckResult gradcheck(const std::function<double()>& loss, float* x, size_t n, const float* analytic,
                          double eps = 1e-2, size_t max_checks = 64);

// gtest assertion: fails naming `what` with the worst index and values when the relative error (with
// `abs_floor` to ignore tiny gradients) exceeds rtol and the analytic value also lies outside the numeric
// estimate's own uncertainty (twice its change when the step is halved), which depends on the BLAS kernels.
void expect_grad_ok(const std::string& what, const std::function<double()>& loss, float* x, size_t n,
                    const float* analytic, double rtol = 2e-2, double abs_floor = 1e-3, double eps = 1e-2,
                    size_t max_checks = 64);

// Directional check for whole tensors inside deep stacks, where single-element differences drown in
// float32 rounding: perturbs x along a fixed random +-1 direction d and compares
// (L(x + eps d) - L(x - eps d)) / 2eps with analytic . d: |err| <= rtol * max(|both|) + abs_floor.
void expect_directional_grad_ok(const std::string& what, const std::function<double()>& loss, float* x, size_t n,
                                const float* analytic, double rtol = 1e-2, double abs_floor = 1e-4,
                                double eps = 1e-3, unsigned seed = 1);

// Random normal values with a fixed seed (tests only).
std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f);

}  // namespace ladder::test
