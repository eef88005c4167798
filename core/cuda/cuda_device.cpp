#include "core/cuda/cuda_device.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "core/tensor/memory.h"

namespace ladder::core {

void cuda_check(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  std::ostringstream msg;
  msg << "CUDA error in " << what << " at " << file << ":" << line << ": " << cudaGetErrorName(err) << " ("
      << cudaGetErrorString(err) << ")";
  throw std::runtime_error(msg.str());
}

// cudaGetDeviceCount with the reason kept: the static runtime dlopens libcuda.so.1 here and reports
// cudaErrorInsufficientDriver / cudaErrorNoDevice when it is missing; neither is sticky.
static int device_count_or_reason(std::string* reason) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (reason) *reason = cudaGetErrorString(err);
    (void)cudaGetLastError();  // clear the error so later calls start clean
    return 0;
  }
  if (n == 0 && reason) *reason = "the driver reports no devices";
  // The memory tracker has slots for at most kMaxDevices - 1 GPUs per process.
  return n < kMaxDevices - 1 ? n : kMaxDevices - 1;
}

int cuda_device_count() { return device_count_or_reason(nullptr); }

std::string cuda_device_summary() {
  std::string reason;
  int n = device_count_or_reason(&reason);
  if (n == 0) return "no CUDA device: " + reason;
  std::ostringstream out;
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  out << "CUDA runtime " << runtime / 1000 << "." << (runtime % 1000) / 10 << ", driver " << driver / 1000 << "."
      << (driver % 1000) / 10 << "\n";
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    LADDER_CUDA_CHECK(cudaGetDeviceProperties(&p, d));
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.1f GiB", double(p.totalGlobalMem) / double(1ull << 30));
    out << "cuda:" << d << " " << p.name << ", sm_" << p.major << p.minor << ", " << mem << ", "
        << p.multiProcessorCount << " SMs\n";
  }
  return out.str();
}

int cuda_select_device(int local_rank) {
  std::string reason;
  int n = device_count_or_reason(&reason);
  if (n == 0) throw std::runtime_error("cuda_select_device(local_rank=" + std::to_string(local_rank) +
                                       "): no CUDA device: " + reason);
  if (local_rank < 0) throw std::runtime_error("cuda_select_device: negative local rank " + std::to_string(local_rank));
  int device = local_rank % n;
  LADDER_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

int cuda_current_device() {
  int d = 0;
  LADDER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

}  // namespace ladder::core
