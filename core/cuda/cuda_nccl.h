#pragma once
// The NCCL pieces core needs: its version (a link and load check that needs no device) and a checked f32
// all-reduce. Communicator creation (ncclUniqueId over MPI) belongs to parallel/.
#include <nccl.h>

#include <cstddef>
#include <string>

namespace ladder::core {

// Throw std::runtime_error("NCCL error in <what> at <file>:<line>: <reason>") unless ok.
void nccl_check(ncclResult_t result, const char* what, const char* file, int line);
#define LADDER_NCCL_CHECK(call) ::ladder::core::nccl_check((call), #call, __FILE__, __LINE__)

// ncclGetVersion of the loaded library, e.g. 22809 for 2.28.9.
int nccl_version();
// "2.28.9".
std::string nccl_version_string();

// In-place when send == recv. Sums count floats across `comm` on `stream` (asynchronous, like NCCL).
void nccl_all_reduce_sum(const float* send, float* recv, size_t count, ncclComm_t comm, cudaStream_t stream);

}  // namespace ladder::core
