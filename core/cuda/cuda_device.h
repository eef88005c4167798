#pragma once
// CUDA devices: discovery that never fails without a driver, device selection per local rank, and the
// error checks every CUDA, cuBLAS and NCCL call in ladder goes through.
#include <cuda_runtime_api.h>

#include <string>

namespace ladder::core {

// Number of usable CUDA devices; 0 (silently, without throwing) when there is no driver, no device, or
// the driver is too old for this runtime.
int cuda_device_count();

// One line per device ("cuda:0 NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB, 132 SMs"), or a line saying why
// there is none ("no CUDA device: CUDA driver version is insufficient for CUDA runtime version").
std::string cuda_device_summary();

// Makes device (local_rank % device count) current for this thread and returns it. Throws when there is
// no device. Ranks on one node share the node's GPUs round-robin.
int cuda_select_device(int local_rank);

// The device current for this thread (cudaGetDevice), checked.
int cuda_current_device();

// Throw std::runtime_error("CUDA error in <what> at <file>:<line>: <error string>") unless ok.
void cuda_check(cudaError_t err, const char* what, const char* file, int line);

}  // namespace ladder::core

// Wraps a CUDA runtime call: LADDER_CUDA_CHECK(cudaMemcpy(...)). After a kernel launch use
// LADDER_CUDA_CHECK(cudaGetLastError()).
#define LADDER_CUDA_CHECK(call) ::ladder::core::cuda_check((call), #call, __FILE__, __LINE__)
