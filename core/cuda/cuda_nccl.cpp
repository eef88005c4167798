#include "core/cuda/cuda_nccl.h"

#include <sstream>
#include <stdexcept>

namespace ladder::core {

void nccl_check(ncclResult_t result, const char* what, const char* file, int line) {
  if (result == ncclSuccess) return;
  std::ostringstream msg;
  msg << "NCCL error in " << what << " at " << file << ":" << line << ": " << ncclGetErrorString(result);
  const char* detail = ncclGetLastError(nullptr);
  if (detail && *detail) msg << " (" << detail << ")";
  throw std::runtime_error(msg.str());
}

int nccl_version() {
  int v = 0;
  LADDER_NCCL_CHECK(ncclGetVersion(&v));
  return v;
}

std::string nccl_version_string() {
  // Since 2.9 the code is major*10000 + minor*100 + patch (before: major*1000 + minor*100 + patch).
  int v = nccl_version();
  int major = v >= 10000 ? v / 10000 : v / 1000;
  int minor = v >= 10000 ? (v / 100) % 100 : (v / 100) % 10;
  int patch = v % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

void nccl_all_reduce_sum(const float* send, float* recv, size_t count, ncclComm_t comm, cudaStream_t stream) {
  if (count == 0) return;
  LADDER_NCCL_CHECK(ncclAllReduce(send, recv, count, ncclFloat32, ncclSum, comm, stream));
}

}  // namespace ladder::core
