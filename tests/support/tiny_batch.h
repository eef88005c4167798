#pragma once
// Scaffolding shared by the method tests: a fixed two-sequence batch with right padding in the second
// row, a float-vector dot product for losses of the form sum(out * R), random fills, and a tiny backbone.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/backbones/backbone.h"
#include "tests/support/gradcheck.h"
#include "tests/support/tiny_models.h"

namespace ladder::test {

struct TinyBatch {
  int B = 2, T = 6;
  std::vector<int32_t> ids, types;
  std::vector<float> mask;
  explicit TinyBatch(int vocab) {
    std::mt19937 g(4);
    for (int i = 0; i < B * T; ++i) {
      ids.push_back(int32_t(g() % vocab));
      types.push_back(0);
      mask.push_back(i >= T && i % T >= 4 ? 0.0f : 1.0f);  // row 1: two padded positions
    }
  }
  core::TokenBatch view() const { return {B, T, ids.data(), types.data(), mask.data()}; }
};

inline double dot(const float* p, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += double(p[i]) * r[i];
  return s;
}
inline double dot(const core::Tensor& t, const std::vector<float>& r) { return dot(t.data<float>(), r); }

inline void fill_randn(core::Parameter& p, unsigned seed, float scale) {
  auto v = randn(size_t(p.value.numel()), seed, scale);
  std::copy(v.begin(), v.end(), p.w());
}

inline std::unique_ptr<core::Backbone> tiny_backbone(bool gpt, const std::string& tag, unsigned seed) {
  return core::load_backbone(gpt ? write_tiny_gpt2(temp_dir(tag), seed) : write_tiny_bert(temp_dir(tag), seed));
}

}  // namespace ladder::test
