#pragma once
// MpiCommunicator: the Communicator on host buffers, one MPI call per collective (MPI_Allreduce,
// MPI_Iallreduce, MPI_Allgather, MPI_Reduce_scatter_block, MPI_Bcast, MPI_Barrier, MPI_Comm_split).
// Averages are MPI's sum scaled by 1/size() afterwards (MPI has no average op).
//
// Each MpiCommunicator owns its MPI_Comm (a duplicate of MPI_COMM_WORLD, or a split) with the error
// handler MPI_ERRORS_RETURN, so an MPI failure becomes an exception naming the call and the rank (and then,
// through run_or_abort, a job abort with that message) instead of MPI's anonymous default abort.
// Counts are limited to INT_MAX elements per call (MPI's int counts); larger is an error.
#include <mpi.h>

#include "parallel/communicator.h"

namespace ladder::parallel {

class MpiCommunicator final : public Communicator {
 public:
  // A communicator over every rank of the job (a duplicate of MPI_COMM_WORLD). MPI must be initialised
  // (MpiRuntime). Collective over MPI_COMM_WORLD.
  static std::unique_ptr<MpiCommunicator> world();
  // Takes ownership of `comm` (freed on destruction unless MPI is already finalized).
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  bool on_device() const override { return false; }

  void all_reduce(float* data, size_t count, ReduceOp op) override;
  void all_reduce(double* data, size_t count, ReduceOp op) override;
  void all_reduce(int64_t* data, size_t count, ReduceOp op) override;
  CommHandle all_reduce_async(float* data, size_t count, ReduceOp op) override;
  void all_gather(const float* send, float* recv, size_t count) override;
  void reduce_scatter(const float* send, float* recv, size_t count, ReduceOp op) override;
  void broadcast(float* data, size_t count, int root) override;
  // Byte broadcast for things that are not floats (an NCCL unique id, a config string).
  void broadcast_bytes(void* data, size_t bytes, int root);
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;
  // The same split, keeping the concrete type (NcclCommunicator bootstraps its splits over it).
  std::unique_ptr<MpiCommunicator> split_mpi(int color, int key);

  // The underlying communicator, for calls the interface does not cover (the raw-MPI benchmark baseline).
  MPI_Comm native() const { return comm_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

// Throws std::runtime_error("MPI error in <what> on rank r: <MPI's error string>") unless err is MPI_SUCCESS.
void mpi_check(int err, const char* what, int rank);

}  // namespace ladder::parallel
