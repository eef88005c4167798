// Embedding lookup and its scatter-add backward with repeated ids.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "core/kernels/embedding.h"
#include "tests/support/gradcheck.h"

namespace lc = ladder::core;
using ladder::test::expect_grad_ok;
using ladder::test::randn;

TEST(KernelEmbedding, ForwardCopiesOrAccumulatesRows) {
  const int N = 6, C = 5, rows = 4;
  std::vector<int32_t> ids = {0, 3, 3, 1, 2, 0};
  auto table = randn(size_t(rows) * C, 51), base = randn(size_t(N) * C, 52);
  std::vector<float> out = base;
  lc::embedding_forward(out.data(), ids.data(), table.data(), N, C, rows, false);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) EXPECT_EQ(out[n * C + c], table[ids[n] * C + c]);
  out = base;
  lc::embedding_forward(out.data(), ids.data(), table.data(), N, C, rows, true);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) EXPECT_FLOAT_EQ(out[n * C + c], base[n * C + c] + table[ids[n] * C + c]);
}

TEST(KernelEmbedding, OutOfRangeIdThrows) {
  const int C = 3, rows = 4;
  auto table = randn(size_t(rows) * C, 53);
  std::vector<float> out(2 * C);
  std::vector<int32_t> bad = {1, 4};
  EXPECT_THROW(lc::embedding_forward(out.data(), bad.data(), table.data(), 2, C, rows, false), std::out_of_range);
  bad = {-1, 0};
  EXPECT_THROW(lc::embedding_forward(out.data(), bad.data(), table.data(), 2, C, rows, false), std::out_of_range);
}

TEST(KernelEmbedding, BackwardFiniteDifference) {
  const int N = 7, C = 6, rows = 5;
  std::vector<int32_t> ids = {1, 4, 1, 0, 4, 4, 2};
  auto table = randn(size_t(rows) * C, 54), r = randn(size_t(N) * C, 55);
  std::vector<float> out(size_t(N) * C), dtable(size_t(rows) * C, 0.0f);
  lc::embedding_backward(dtable.data(), r.data(), ids.data(), N, C);
  auto loss = [&] {
    lc::embedding_forward(out.data(), ids.data(), table.data(), N, C, rows, false);
    double s = 0;
    for (size_t i = 0; i < out.size(); i++) s += double(out[i]) * r[i];
    return s;
  };
  expect_grad_ok("embedding dtable", loss, table.data(), table.size(), dtable.data());
}

TEST(KernelEmbedding, BackwardRepeatedIdsInParallelAccumulates) {
  const int N = 2000, C = 200, rows = 10;  // many repeats, parallel path
  std::vector<int32_t> ids(N);
  for (int n = 0; n < N; n++) ids[n] = (n * 7) % rows;
  auto dout = randn(size_t(N) * C, 56);
  std::vector<double> ref(size_t(rows) * C, 0.0);
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) ref[size_t(ids[n]) * C + c] += dout[size_t(n) * C + c];
  std::vector<float> dtable(size_t(rows) * C, 1.0f);  // accumulates on top of 1
  lc::embedding_backward(dtable.data(), dout.data(), ids.data(), N, C);
  for (size_t i = 0; i < ref.size(); i++) ASSERT_NEAR(dtable[i], 1.0 + ref[i], 1e-3) << i;
}
