// Every collective of MpiCommunicator against values worked out by hand from each rank's inputs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/parallel/mpi_test_env.h"

using ladder::parallel::CommHandle;
using ladder::parallel::ReduceOp;
using ladder::test::test_world;

namespace {

// Rank r holds (r+1)*(i+1): the sum over ranks is (i+1)*n(n+1)/2 exactly (small integers).
std::vector<float> ramp(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = float((rank + 1) * int(i + 1));
  return v;
}

}  // namespace

TEST(MpiCommunicator, RankAndSizeMatchMpi) {
  auto& w = test_world();
  int r = -1, n = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  EXPECT_EQ(w.rank(), r);
  EXPECT_EQ(w.size(), n);
  EXPECT_STREQ(w.backend(), "mpi");
  EXPECT_FALSE(w.on_device());
}

TEST(MpiCommunicator, AllReduceSumFloat) {
  auto& w = test_world();
  const int n = w.size();
  auto v = ramp(w.rank(), 1000);
  w.all_reduce(v.data(), v.size(), ReduceOp::sum);
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], float(int(i + 1) * n * (n + 1) / 2)) << "element " << i;
}

TEST(MpiCommunicator, AllReduceAverageFloat) {
  auto& w = test_world();
  const int n = w.size();
  auto v = ramp(w.rank(), 257);
  w.all_reduce(v.data(), v.size(), ReduceOp::average);
  // mean of (r+1)(i+1) over r = (i+1)(n+1)/2
  for (size_t i = 0; i < v.size(); ++i) ASSERT_FLOAT_EQ(v[i], float(i + 1) * float(n + 1) / 2.0f) << "element " << i;
}

TEST(MpiCommunicator, AllReduceDoubleSumAndAverage) {
  auto& w = test_world();
  const int n = w.size();
  std::vector<double> v = {0.25 * (w.rank() + 1), 1e300 / 8, -double(w.rank())};
  w.all_reduce(v.data(), v.size(), ReduceOp::sum);
  EXPECT_DOUBLE_EQ(v[0], 0.25 * n * (n + 1) / 2);
  EXPECT_DOUBLE_EQ(v[1], n * (1e300 / 8));  // beyond float's range: really double on the wire
  EXPECT_DOUBLE_EQ(v[2], -double(n * (n - 1) / 2));
  std::vector<double> a = {double(w.rank())};
  w.all_reduce(a.data(), a.size(), ReduceOp::average);
  EXPECT_DOUBLE_EQ(a[0], (n - 1) / 2.0);
}

TEST(MpiCommunicator, AllReduceInt64SumIsExactBeyond32Bits) {
  auto& w = test_world();
  const int n = w.size();
  std::vector<int64_t> v = {(int64_t(1) << 40) + w.rank(), -int64_t(w.rank())};
  w.all_reduce(v.data(), v.size(), ReduceOp::sum);
  EXPECT_EQ(v[0], n * (int64_t(1) << 40) + n * (n - 1) / 2);
  EXPECT_EQ(v[1], -int64_t(n * (n - 1) / 2));
  // An integer average would truncate: refused (before any communication, so on every rank alike).
  EXPECT_THROW(w.all_reduce(v.data(), v.size(), ReduceOp::average), std::invalid_argument);
}

TEST(MpiCommunicator, AllReduceOfNothingIsFine) {
  auto& w = test_world();
  float dummy = 7.0f;
  w.all_reduce(&dummy, 0, ReduceOp::average);
  EXPECT_EQ(dummy, 7.0f);
}

TEST(MpiCommunicator, AsyncAllReducesCompleteInAnyWaitOrder) {
  auto& w = test_world();
  const int n = w.size();
  auto a = ramp(w.rank(), 5000);
  auto b = ramp(w.rank(), 300);
  CommHandle ha = w.all_reduce_async(a.data(), a.size(), ReduceOp::sum);
  CommHandle hb = w.all_reduce_async(b.data(), b.size(), ReduceOp::average);
  EXPECT_TRUE(ha.active());
  hb.wait();
  ha.wait();
  ha.wait();  // idempotent
  EXPECT_FALSE(ha.active());
  EXPECT_TRUE(ha.test());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], float(int(i + 1) * n * (n + 1) / 2)) << "element " << i;
  for (size_t i = 0; i < b.size(); ++i) ASSERT_FLOAT_EQ(b[i], float(i + 1) * float(n + 1) / 2.0f) << "element " << i;
}

TEST(MpiCommunicator, AsyncHandleWaitsWhenDestroyed) {
  auto& w = test_world();
  const int n = w.size();
  auto a = ramp(w.rank(), 100);
  {
    CommHandle h = w.all_reduce_async(a.data(), a.size(), ReduceOp::average);
    while (!h.test()) {
    }
  }  // the destructor waits, and applies the average's scaling
  for (size_t i = 0; i < a.size(); ++i) ASSERT_FLOAT_EQ(a[i], float(i + 1) * float(n + 1) / 2.0f);
}

TEST(MpiCommunicator, AllGatherConcatenatesInRankOrder) {
  auto& w = test_world();
  const int n = w.size();
  std::vector<float> send = {10.0f * w.rank(), 10.0f * w.rank() + 1, 10.0f * w.rank() + 2};
  std::vector<float> recv(size_t(3 * n), -1.0f);
  w.all_gather(send.data(), recv.data(), 3);
  for (int r = 0; r < n; ++r)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(recv[size_t(3 * r + k)], 10.0f * r + k) << "from rank " << r;
}

TEST(MpiCommunicator, ReduceScatterSumAndAverage) {
  auto& w = test_world();
  const int n = w.size(), me = w.rank();
  const size_t count = 4;
  std::vector<float> send(count * size_t(n));
  for (size_t j = 0; j < send.size(); ++j) send[j] = float(100 * me + int(j));
  std::vector<float> recv(count);
  w.reduce_scatter(send.data(), recv.data(), count, ReduceOp::sum);
  // sum over r of (100 r + me*count + k) = 100 n(n-1)/2 + n (me*count + k)
  for (size_t k = 0; k < count; ++k) EXPECT_EQ(recv[k], float(100 * n * (n - 1) / 2 + n * int(me * count + k)));
  w.reduce_scatter(send.data(), recv.data(), count, ReduceOp::average);
  for (size_t k = 0; k < count; ++k) EXPECT_FLOAT_EQ(recv[k], float(100.0 * (n - 1) / 2 + double(me * count + k)));
}

TEST(MpiCommunicator, BroadcastFromLastRank) {
  auto& w = test_world();
  const int root = w.size() - 1;
  std::vector<float> v(6, 0.0f);
  if (w.rank() == root)
    for (size_t i = 0; i < v.size(); ++i) v[i] = 3.5f + float(i);
  w.broadcast(v.data(), v.size(), root);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], 3.5f + float(i));
  char text[32] = "", expect[32] = "";
  std::snprintf(expect, sizeof(expect), "root %d", root);
  if (w.rank() == root) std::snprintf(text, sizeof(text), "%s", expect);
  w.broadcast_bytes(text, sizeof(text), root);
  EXPECT_STREQ(text, expect);
}

TEST(MpiCommunicator, BarrierHoldsEveryoneUntilTheLastArrives) {
  auto& w = test_world();
  w.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  if (w.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  w.barrier();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(ms, 250.0) << "rank " << w.rank() << " left the barrier before rank 0 entered it";
}

TEST(MpiCommunicator, SplitGroupsByColorAndOrdersByKey) {
  auto& w = test_world();
  const int n = w.size(), me = w.rank();
  // Even and odd ranks, each group in descending world-rank order (key = -rank).
  auto half = w.split(me % 2, -me);
  std::vector<int> members;
  for (int r = n - 1; r >= 0; --r)
    if (r % 2 == me % 2) members.push_back(r);
  ASSERT_EQ(half->size(), int(members.size()));
  EXPECT_EQ(members[size_t(half->rank())], me);
  // A collective in the split sees only its members: sum of their world ranks.
  std::vector<int64_t> s = {me};
  half->all_reduce(s.data(), 1, ReduceOp::sum);
  int64_t expect = 0;
  for (int r : members) expect += r;
  EXPECT_EQ(s[0], expect);
  EXPECT_THROW(w.split(-1, 0), std::invalid_argument);
}
