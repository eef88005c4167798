#pragma once
// The trainer's optimizer state on resume and save. Checkpoints hold whole tensors; a tensor-parallel rank
// holds, of each state tensor, the part of its parameter's shard (core::OptimizerState::param->shard).
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/io/checkpoint.h"
#include "core/modules/tensor_parallel.h"
#include "core/optim/optimizer.h"

namespace ladder::apps {

// Copies the checkpoint's optimizer state (read from `path`) into `opt`: each state tensor of a sharded
// parameter takes its rank's part of the whole (core::shard_of), any other the whole. Sets nothing else (not
// the step count). Throws naming `path` when the checkpoint's optimizer kind is not opt.kind(), or at the
// first state whose name, dtype or shape differs from this run's (or when one side has more states).
void restore_optimizer_state(core::Optimizer& opt, const core::CheckpointData& ck, const std::string& path);

// The whole tensor of every state of `opt`, named as in state(), for CheckpointData::optimizer. `gather`
// returns the whole tensor of a local one given its parameter's ShardSpec (the trainer's DataParallel::gather,
// collective over the tp group: every rank of the group calls this).
std::vector<std::pair<std::string, core::Tensor>> gather_optimizer_state(
    core::Optimizer& opt, const std::function<core::Tensor(const core::Tensor&, const core::ShardSpec&)>& gather);

}  // namespace ladder::apps
