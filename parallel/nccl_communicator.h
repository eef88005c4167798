#pragma once
// NcclCommunicator: the Communicator on device buffers of the current CUDA device, one NCCL call per
// collective. Built only with the CUDA backend (target ladder_parallel_nccl); the CPU build never sees it.
//
// Bootstrap: collective over an MpiCommunicator: rank 0 makes the ncclUniqueId, MPI broadcasts it, every
// rank calls ncclCommInitRank. The MpiCommunicator is kept: split() splits it and bootstraps a new NCCL
// communicator over the part, so the NCCL group always has exactly the MPI group's ranks and order.
//
// Streams: every collective is enqueued on this communicator's own stream, created blocking (not
// cudaStreamNonBlocking) so that it is ordered after work the caller queued on the legacy default stream.
// Blocking calls return once the stream has finished them (results readable, like MPI); all_reduce_async
// returns after enqueueing, and its handle waits on an event. Average is NCCL's own ncclAvg.
// One process per GPU: two ranks of one communicator on the same device is an NCCL error.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"

namespace ladder::parallel {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap`. Uses the CUDA device current on each rank (cuda_select_device first).
  explicit NcclCommunicator(std::unique_ptr<MpiCommunicator> bootstrap);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  const char* backend() const override { return "nccl"; }
  bool on_device() const override { return true; }

  void all_reduce(float* data, size_t count, ReduceOp op) override;
  void all_reduce(double* data, size_t count, ReduceOp op) override;
  void all_reduce(int64_t* data, size_t count, ReduceOp op) override;
  CommHandle all_reduce_async(float* data, size_t count, ReduceOp op) override;
  void all_gather(const float* send, float* recv, size_t count) override;
  void reduce_scatter(const float* send, float* recv, size_t count, ReduceOp op) override;
  void broadcast(float* data, size_t count, int root) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;

  cudaStream_t stream() const { return stream_; }
  ncclComm_t native() const { return comm_; }

 private:
  void all_reduce_typed(void* data, size_t count, ncclDataType_t type, ReduceOp op, const char* what);
  void sync(const char* what);

  std::unique_ptr<MpiCommunicator> bootstrap_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
};

}  // namespace ladder::parallel
