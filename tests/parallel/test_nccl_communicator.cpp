// NcclCommunicator on device buffers (built only with the CUDA backend). Skips cleanly, on every rank
// alike, without a device or with fewer devices than ranks on this node (NCCL wants one GPU per rank).
#include <gtest/gtest.h>

#include <vector>

#include "core/cuda/cuda_buffer.h"
#include "parallel/gradient_buckets.h"
#include "parallel/launch_env.h"
#include "parallel/nccl_communicator.h"
#include "tests/cuda/cuda_test_support.h"
#include "tests/parallel/mpi_test_env.h"

using ladder::core::CudaBuffer;
using ladder::core::MemCategory;
using ladder::parallel::NcclCommunicator;
using ladder::parallel::ReduceOp;
using ladder::test::test_world;

namespace {

class Nccl : public ::testing::Test {
 protected:
  void SetUp() override {
    LADDER_REQUIRE_CUDA();
    const auto env = ladder::parallel::detect_launch_env();
    if (ladder::core::cuda_device_count() < env.local_size)
      GTEST_SKIP() << env.local_size << " ranks on this node but " << ladder::core::cuda_device_count() << " GPU(s)";
    ladder::core::cuda_select_device(env.local_rank);
    auto& w = test_world();
    comm = std::make_unique<NcclCommunicator>(w.split_mpi(0, w.rank()));
  }
  std::unique_ptr<NcclCommunicator> comm;
};

std::vector<float> ramp(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = float((rank + 1) * int(i + 1));
  return v;
}

}  // namespace

TEST_F(Nccl, AllReduceSumAndAverage) {
  const int n = comm->size();
  CudaBuffer<float> d(ramp(comm->rank(), 1000), MemCategory::communication);
  comm->all_reduce(d.data(), d.size(), ReduceOp::sum);
  auto h = d.to_host();
  for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i], float(int(i + 1) * n * (n + 1) / 2));
  d.copy_from_host(ramp(comm->rank(), 1000).data(), 1000);
  auto handle = comm->all_reduce_async(d.data(), d.size(), ReduceOp::average);
  handle.wait();
  h = d.to_host();
  for (size_t i = 0; i < h.size(); ++i) ASSERT_FLOAT_EQ(h[i], float(i + 1) * float(n + 1) / 2.0f);
}

TEST_F(Nccl, Int64AndDouble) {
  const int n = comm->size();
  CudaBuffer<int64_t> i64(std::vector<int64_t>{(int64_t(1) << 40) + comm->rank()}, MemCategory::communication);
  comm->all_reduce(i64.data(), 1, ReduceOp::sum);
  EXPECT_EQ(i64.to_host()[0], n * (int64_t(1) << 40) + n * (n - 1) / 2);
  EXPECT_THROW(comm->all_reduce(i64.data(), 1, ReduceOp::average), std::invalid_argument);
  CudaBuffer<double> f64(std::vector<double>{double(comm->rank())}, MemCategory::communication);
  comm->all_reduce(f64.data(), 1, ReduceOp::average);
  EXPECT_DOUBLE_EQ(f64.to_host()[0], (n - 1) / 2.0);
}

TEST_F(Nccl, GatherScatterBroadcast) {
  const int n = comm->size(), me = comm->rank();
  CudaBuffer<float> send(std::vector<float>{10.0f * me, 10.0f * me + 1}, MemCategory::communication);
  CudaBuffer<float> all(size_t(2 * n), MemCategory::communication);
  comm->all_gather(send.data(), all.data(), 2);
  auto g = all.to_host();
  for (int r = 0; r < n; ++r) EXPECT_EQ(g[size_t(2 * r + 1)], 10.0f * r + 1);

  std::vector<float> rs(size_t(2 * n));
  for (size_t j = 0; j < rs.size(); ++j) rs[j] = float(100 * me + int(j));
  CudaBuffer<float> rsd(rs, MemCategory::communication), out(2, MemCategory::communication);
  comm->reduce_scatter(rsd.data(), out.data(), 2, ReduceOp::sum);
  auto o = out.to_host();
  for (int k = 0; k < 2; ++k) EXPECT_EQ(o[size_t(k)], float(100 * n * (n - 1) / 2 + n * (me * 2 + k)));

  CudaBuffer<float> b(std::vector<float>{me == 0 ? 42.0f : 0.0f}, MemCategory::communication);
  comm->broadcast(b.data(), 1, 0);
  EXPECT_EQ(b.to_host()[0], 42.0f);
  comm->barrier();
}

TEST_F(Nccl, SplitAndDeviceBuckets) {
  auto one = comm->split(comm->rank(), 0);  // every rank alone
  EXPECT_EQ(one->size(), 1);
  EXPECT_STREQ(one->backend(), "nccl");
  const int n = comm->size();
  CudaBuffer<float> grads(ramp(comm->rank(), 3000), MemCategory::gradients);
  ladder::parallel::GradientBuckets gb(*comm, {{"b", grads.data() + 1000, 2000}, {"a", grads.data(), 1000}}, 4096);
  gb.mark_ready(0);
  gb.mark_ready(1);
  gb.finish();
  auto h = grads.to_host();
  for (size_t i = 0; i < h.size(); ++i) ASSERT_FLOAT_EQ(h[i], float(i + 1) * float(n + 1) / 2.0f);
}
