#pragma once
// The parallel side of `ladder train`. Started by a launcher with more than one process (mpirun -np N,
// srun), it initialises MPI and the dp x tp grid (parallel/process_grid.h) and gives the trainer what it
// needs to run as one job:
//   - the tensor-parallel group the backbone is sharded over (parallel.tp > 1), and the summing of the
//     gradients that are only a rank's share (LoRA's A beside a column-parallel layer) over that group;
//   - which rows of each global batch this rank trains on (interleaved by length, so ranks pad alike);
//   - averaging of the trainable gradients only, in buckets whose all-reduce starts while backward still
//     runs the layers below (the backbone's layer hook marks a layer's gradients final);
//   - the step's loss and token count summed over ranks, and a stop (signal) every rank agrees on;
//   - run_or_abort: an exception on any rank ends the whole job with that rank's message.
// With one process nothing here touches MPI and every call is local, so a plain run is unchanged.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/backbones/backbone.h"

namespace ladder::parallel {
class MpiRuntime;
class MpiCommunicator;
class ProcessGrid;
class GradientBuckets;
class CommTensorParallelGroup;
}  // namespace ladder::parallel

namespace ladder::apps {

class DataParallel {
 public:
  // Reads the launch environment; initialises MPI only when the world has more than one process. tp must
  // divide the number of processes (an error names both).
  explicit DataParallel(int tp);
  ~DataParallel();

  bool distributed() const { return distributed_; }
  int rank() const { return rank_; }   // dp rank
  int size() const { return size_; }   // dp size
  bool lead() const { return world_rank_ == 0; }
  int tp() const { return tp_; }
  int tp_rank() const { return tp_rank_; }
  // The group the backbone is sharded over; null without tensor parallelism.
  core::TensorParallelGroup* tp_group() const;
  // Whether this rank takes part in writing checkpoints: the tp group of dp rank 0 gathers the shards, its
  // tp rank 0 (the lead) writes.
  bool gathers_checkpoint() const { return rank_ == 0; }
  // The whole tensor of a (possibly sharded) local one (core::gather_from_region); collective over the tp group.
  core::Tensor gather(const core::Tensor& local, const core::ShardSpec& spec) const;
  // Gradient clipping over the whole model (sharded gradients' norms summed over the tp group).
  float clip_grad_norm(core::ParameterRegistry& params, float max_norm) const;
  int local_size() const { return local_size_; }

  // Runs `body` so that an exception on this rank aborts every rank with its message (distributed), or
  // just runs it (one process: the caller's error handling applies).
  int run(const std::function<int()>& body);

  // Positions in a global batch of size() * micro * accum sequences (sorted by length) that micro-batch m
  // of this rank takes: m*size*micro + rank + k*size for k < micro.
  std::vector<size_t> slice(size_t m, size_t micro) const;

  // Gradient averaging for every trainable parameter of `backbone.params()` (after allocate_gradients).
  // Installs the backbone's layer hook: on the step's last micro-batch (set_last_micro), a layer's
  // gradients are handed to the all-reduce as soon as its backward is done.
  void attach(core::Backbone& backbone, double bucket_mb);
  void set_last_micro(bool last) { last_micro_ = last; }
  // Starts what is left, waits for all; the gradients are then the average over dp ranks, and partial
  // gradients (Parameter::tp_partial_grad) are summed over the tp group.
  void average_gradients();
  // Every rank gets rank 0's values of the trainable parameters (so replicas start identical).
  void broadcast_trainable(core::ParameterRegistry& params);

  // Waits for every rank (no-op with one process).
  void barrier();
  // Sums v over ranks in place (one all-reduce).
  void sum(std::vector<double>& v);

  // The world communicator (null with one process), e.g. for writers of shared files.
  parallel::MpiCommunicator* world() const { return world_.get(); }

  // Communication of the last step, for the report.
  size_t bytes_last_step() const;
  double wait_ms_last_step() const;
  size_t buckets() const;
  // Tensor-parallel all-reduces (forward and backward of the sharded layers) since the last call.
  double take_tp_seconds();

 private:
  bool distributed_ = false;
  int rank_ = 0, size_ = 1, local_size_ = 1, world_rank_ = 0, tp_ = 1, tp_rank_ = 0;
  std::vector<core::Parameter*> partial_;  // gradients summed over the tp group after backward
  bool last_micro_ = true;
  std::unique_ptr<parallel::MpiRuntime> mpi_;
  std::unique_ptr<parallel::MpiCommunicator> world_;
  std::unique_ptr<parallel::ProcessGrid> grid_;
  std::unique_ptr<parallel::GradientBuckets> buckets_;
  std::unique_ptr<parallel::CommTensorParallelGroup> tp_group_;
  std::vector<std::vector<size_t>> spans_of_layer_;  // span indices per backbone layer
};

}  // namespace ladder::apps
