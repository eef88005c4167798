#include "parallel/process_grid.h"

#include <stdexcept>
#include <string>

#include "parallel/launch_env.h"

namespace ladder::parallel {

ProcessGrid::ProcessGrid(Communicator& world, int tp)
    : world_rank_(world.rank()), world_size_(world.size()), tp_(tp) {
  if (tp < 1 || world_size_ % tp != 0)
    throw std::invalid_argument("tensor-parallel size --tp " + std::to_string(tp) + " does not divide the world size " +
                                std::to_string(world_size_) + " (world = dp x tp)");
  dp_ = world_size_ / tp;
  local_rank_ = detect_launch_env().local_rank;
  // Keys are world ranks, so each group is ordered by world rank: tp_comm rank == tp_rank, dp_comm rank == dp_rank.
  tp_comm_ = world.split(dp_rank(), world_rank_);
  dp_comm_ = world.split(tp_rank(), world_rank_);
  if (tp_comm_->rank() != tp_rank() || dp_comm_->rank() != dp_rank())
    throw std::logic_error("ProcessGrid: split produced an unexpected rank order");
}

}  // namespace ladder::parallel
