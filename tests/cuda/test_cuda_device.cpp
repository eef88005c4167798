// Device discovery, error helpers, accounted buffers and the NCCL link. The first tests run everywhere
// (no GPU needed); the buffer tests skip cleanly without a device.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/cuda/cuda_buffer.h"
#include "core/cuda/cuda_device.h"
#include "core/cuda/cuda_gemm.h"
#include "core/cuda/cuda_nccl.h"
#include "cuda_test_support.h"

namespace ladder::core {
namespace {

std::string read_maps() {
  std::ifstream f("/proc/self/maps");
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The shared libraries mapped when static initialisation ran: every DT_NEEDED dependency of the binary is
// loaded by then, and no CUDA call has happened yet (the static runtime loads the driver lazily, on the
// first call). If libcuda.so were a link-time dependency it would be in here on any machine.
const std::string maps_at_load = read_maps();

TEST(CudaDevice, CountIsZeroOrMoreAndNeverThrows) {
  int n = -1;
  EXPECT_NO_THROW(n = cuda_device_count());
  EXPECT_GE(n, 0);
  std::string summary;
  EXPECT_NO_THROW(summary = cuda_device_summary());
  EXPECT_FALSE(summary.empty());
  if (n == 0) {
    EXPECT_EQ(summary.rfind("no CUDA device: ", 0), 0u) << summary;
  } else {
    EXPECT_NE(summary.find("cuda:0 "), std::string::npos) << summary;
  }
}

TEST(CudaDevice, BinaryDoesNotLinkTheDriver) {
  ASSERT_FALSE(maps_at_load.empty()) << "/proc/self/maps unreadable";
  // The dynamic dependencies we do have are mapped (so the snapshot means something) ...
  EXPECT_NE(maps_at_load.find("libnccl.so"), std::string::npos);
  EXPECT_NE(maps_at_load.find("libcublas.so"), std::string::npos);
  // ... and neither the driver nor the shared runtime is: the runtime is linked statically.
  EXPECT_EQ(maps_at_load.find("libcuda.so"), std::string::npos) << maps_at_load;
  EXPECT_EQ(maps_at_load.find("libcudart.so"), std::string::npos) << maps_at_load;
  // Without a device there is usually no driver either; probing must not have required one to exist.
  if (cuda_device_count() == 0) {
    std::string now = read_maps();
    EXPECT_EQ(now.find("libcudart.so"), std::string::npos);
  }
}

TEST(CudaDevice, SelectDeviceFollowsLocalRank) {
  int n = cuda_device_count();
  if (n == 0) {
    try {
      cuda_select_device(0);
      FAIL() << "cuda_select_device(0) did not throw without a device";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
    return;
  }
  for (int rank = 0; rank < 2 * n; ++rank) {
    EXPECT_EQ(cuda_select_device(rank), rank % n);
    EXPECT_EQ(cuda_current_device(), rank % n);
  }
  EXPECT_THROW(cuda_select_device(-1), std::runtime_error);
  cuda_select_device(0);
}

TEST(CudaDevice, ErrorsNameTheCallFileAndLine) {
  EXPECT_NO_THROW(cuda_check(cudaSuccess, "cudaFree(p)", "x.cu", 1));
  try {
    cuda_check(cudaErrorInvalidValue, "cudaMemcpy(dst, src, n)", "core/cuda/x.cu", 42);
    FAIL() << "cuda_check did not throw";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cudaMemcpy(dst, src, n)"), std::string::npos) << m;
    EXPECT_NE(m.find("core/cuda/x.cu:42"), std::string::npos) << m;
    EXPECT_NE(m.find("cudaErrorInvalidValue"), std::string::npos) << m;
  }
  try {
    cublas_check(CUBLAS_STATUS_INVALID_VALUE, "cublasSgemm(...)", "g.cpp", 7);
    FAIL() << "cublas_check did not throw";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cublasSgemm(...)"), std::string::npos) << m;
    EXPECT_NE(m.find("g.cpp:7"), std::string::npos) << m;
  }
  try {
    nccl_check(ncclInvalidArgument, "ncclAllReduce(...)", "n.cpp", 9);
    FAIL() << "nccl_check did not throw";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("ncclAllReduce(...)"), std::string::npos) << m;
    EXPECT_NE(m.find("n.cpp:9"), std::string::npos) << m;
  }
}

TEST(CudaNccl, LibraryLinksAndReportsItsVersion) {
  // ncclGetVersion needs no device: this proves libnccl links and loads.
  int v = nccl_version();
  EXPECT_GE(v, 20000) << "expected NCCL 2.x with the 2.9+ version code";
  std::string s = nccl_version_string();
  EXPECT_EQ(s.rfind("2.", 0), 0u) << s;
}

TEST(CudaBuffer, EmptyBufferNeedsNoDevice) {
  CudaBuffer<float> b(0, MemCategory::workspace);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.to_host().empty());
}

TEST(CudaBuffer, AllocationWithoutDeviceThrows) {
  if (cuda_device_count() != 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(CudaBuffer<float>(16, MemCategory::workspace), std::runtime_error);
}

TEST(CudaBuffer, IsAccountedAndRoundTrips) {
  LADDER_REQUIRE_CUDA();
  auto& mt = MemoryTracker::instance();
  const int slot = 1 + cuda_current_device();
  const size_t before = mt.current(slot, MemCategory::gradients);
  {
    std::vector<float> host = test::random_floats(1000, 1);
    CudaBuffer<float> a(host, MemCategory::gradients);
    EXPECT_EQ(mt.current(slot, MemCategory::gradients), before + 4000);
    EXPECT_GE(mt.peak(slot, MemCategory::gradients), before + 4000);
    EXPECT_EQ(a.to_host(), host);

    CudaBuffer<float> moved = std::move(a);  // ownership moves; the bytes are counted once
    EXPECT_EQ(a.data(), nullptr);
    EXPECT_EQ(mt.current(slot, MemCategory::gradients), before + 4000);
    moved.zero();
    EXPECT_EQ(moved.to_host(), std::vector<float>(1000, 0.0f));
    EXPECT_THROW(moved.copy_from_host(host.data(), 1001), std::runtime_error);
  }
  EXPECT_EQ(mt.current(slot, MemCategory::gradients), before);
}

}  // namespace
}  // namespace ladder::core
