#pragma once
// ProcessGrid: world = dp × tp. A tp group is `tp` contiguous world ranks (ranks 0..tp-1 are tp group 0,
// so with ranks filled node by node a tp group stays on one node); a dp group is the ranks with the same
// tp_rank, one from each tp group:
//
//   world rank  r
//   tp_rank   = r % tp        dp_rank = r / tp
//   tp group  = {dp_rank*tp + t : t < tp}      dp group = {d*tp + tp_rank : d < dp}
//
// Both communicators come from world.split(), so the grid is backend-independent (MPI or NCCL world).
#include <memory>

#include "parallel/communicator.h"

namespace ladder::parallel {

class ProcessGrid {
 public:
  // Collective over `world`. Throws std::invalid_argument when tp < 1 or tp does not divide world.size()
  // (naming both). The local rank (GPU choice) comes from the launch environment.
  ProcessGrid(Communicator& world, int tp);

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int dp() const { return dp_; }
  int tp() const { return tp_; }
  int dp_rank() const { return world_rank_ / tp_; }
  int tp_rank() const { return world_rank_ % tp_; }
  int local_rank() const { return local_rank_; }

  // Ranks with this rank's tp_rank, one per tp group; rank() == dp_rank(). Gradient averaging runs here.
  Communicator& dp_comm() { return *dp_comm_; }
  // This rank's tp group; rank() == tp_rank(). Sharded layers' collectives run here.
  Communicator& tp_comm() { return *tp_comm_; }

  // The world rank of (dp_rank, tp_rank).
  int world_rank_of(int dp_rank, int tp_rank) const { return dp_rank * tp_ + tp_rank; }

 private:
  int world_rank_ = 0, world_size_ = 1, dp_ = 1, tp_ = 1, local_rank_ = 0;
  std::unique_ptr<Communicator> dp_comm_, tp_comm_;
};

}  // namespace ladder::parallel
