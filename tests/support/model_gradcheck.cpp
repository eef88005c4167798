#include "tests/support/model_gradcheck.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/gradcheck.h"
#include "tests/support/tiny_batch.h"

namespace ladder::test {

size_t check_model_gradients(core::Backbone& m, unsigned seed, uint64_t dropout_seed, const std::vector<std::string>& skip) {
  m.params().allocate_gradients();
  TinyBatch in(m.config().vocab_size);
  const int N = in.B * in.T, C = m.config().hidden;
  auto r = randn(size_t(N) * C, seed);
  core::StepOptions opt;
  opt.save_for_backward = true;
  opt.training = true;
  opt.seed = dropout_seed;
  m.params().zero_grad();
  m.forward(in.view(), opt);
  m.backward(r.data());
  core::StepOptions fwd = opt;
  fwd.save_for_backward = false;
  auto loss = [&]() {
    m.forward(in.view(), fwd);
    return dot(m.last_hidden().data<float>(), r);
  };
  size_t n = 0;
  for (auto* p : m.params().trainable()) {
    bool skipped = false;
    for (const auto& s : skip) skipped = skipped || p->name.rfind(s, 0) == 0;
    if (skipped) continue;
    auto g = p->grad.to_floats();
    double norm = 0;
    for (float v : g) norm += std::fabs(v);
    EXPECT_GT(norm, 0.0) << p->name << " got no gradient";
    expect_directional_grad_ok(p->name, loss, p->w(), size_t(p->value.numel()), g.data(), 1e-2, 5e-3, 3e-3);
    ++n;
  }
  for (auto& p : m.params().all())
    if (!p->trainable) {
      EXPECT_FALSE(p->grad.defined()) << p->name;
    }
  return n;
}

}  // namespace ladder::test
