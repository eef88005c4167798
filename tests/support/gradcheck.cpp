#include "tests/support/gradcheck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace ladder::test {

GradCheckResult gradcheck(const std::function<double()>& loss, float* x, size_t n, const float* analytic, double eps,
                          size_t max_checks) {
  GradCheckResult r;
  size_t stride = std::max<size_t>(1, n / std::max<size_t>(1, max_checks));
  for (size_t i = 0; i < n; i += stride) {
    float saved = x[i];
    x[i] = float(saved + eps);
    double lp = loss();
    x[i] = float(saved - eps);
    double lm = loss();
    x[i] = saved;
    double num = (lp - lm) / (2 * eps);
    double a = analytic[i];
    double abs_err = std::fabs(a - num);
    double rel = abs_err / std::max({std::fabs(a), std::fabs(num), 1e-6});
    if (abs_err > r.max_abs_err) r.max_abs_err = abs_err;
    if (rel > r.max_rel_err) {
      r.max_rel_err = rel;
      r.worst = i;
    }
    ++r.checked;
  }
  return r;
}

void expect_grad_ok(const std::string& what, const std::function<double()>& loss, float* x, size_t n,
                    const float* analytic, double rtol, double abs_floor, double eps, size_t max_checks) {
  auto central = [&](size_t i, double h) {
    const float saved = x[i];
    x[i] = float(saved + h);
    const double lp = loss();
    x[i] = float(saved - h);
    const double lm = loss();
    x[i] = saved;
    return (lp - lm) / (2 * h);
  };
  size_t stride = std::max<size_t>(1, n / std::max<size_t>(1, max_checks));
  for (size_t i = 0; i < n; i += stride) {
    const double num = central(i, eps);
    const double a = analytic[i];
    const double err = std::fabs(a - num);
    const double scale = std::max({std::fabs(a), std::fabs(num), abs_floor});
    if (err / scale <= rtol) continue;
    // The central difference of a float32 forward has its own error: rounding noise in the two losses,
    // divided by 2 eps, and truncation of order eps^2. Which kernels the BLAS picks changes the noise, so
    // the tolerance includes the numeric estimate's measured uncertainty: its change from eps to eps / 2.
    // A wrong analytic gradient stays outside it, since both step sizes agree with each other there.
    const double uncertainty = std::fabs(num - central(i, eps / 2));
    if (err <= rtol * scale + 2 * uncertainty) continue;
    ADD_FAILURE() << what << ": gradient mismatch at index " << i << ": analytic " << a << " vs numeric " << num
                  << " (rel err " << err / scale << " > " << rtol << "; the numeric estimate moves by " << uncertainty
                  << " from eps " << eps << " to " << eps / 2 << ")";
    return;
  }
}

void expect_directional_grad_ok(const std::string& what, const std::function<double()>& loss, float* x, size_t n,
                                const float* analytic, double rtol, double abs_floor, double eps, unsigned seed) {
  std::mt19937 g(seed);
  std::vector<float> saved(x, x + n), dir(n);
  double expected = 0;
  for (size_t i = 0; i < n; ++i) {
    dir[i] = (g() & 1) ? 1.0f : -1.0f;
    expected += double(analytic[i]) * dir[i];
  }
  for (size_t i = 0; i < n; ++i) x[i] = float(saved[i] + eps * dir[i]);
  double lp = loss();
  for (size_t i = 0; i < n; ++i) x[i] = float(saved[i] - eps * dir[i]);
  double lm = loss();
  std::copy(saved.begin(), saved.end(), x);
  double num = (lp - lm) / (2 * eps);
  double err = std::fabs(expected - num);
  double tol = rtol * std::max(std::fabs(expected), std::fabs(num)) + abs_floor;
  if (err > tol)
    ADD_FAILURE() << what << ": directional derivative mismatch: analytic " << expected << " vs numeric " << num
                  << " (|err| " << err << " > " << tol << ")";
}

std::vector<float> randn(size_t n, unsigned seed, float scale) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

}  // namespace ladder::test
