#include "apps/train/optimizer_state.h"

#include <algorithm>
#include <stdexcept>

namespace ladder::apps {

void restore_optimizer_state(core::Optimizer& opt, const core::CheckpointData& ck, const std::string& path) {
  if (ck.optimizer_kind != opt.kind())
    throw std::runtime_error(path + ": optimizer state is '" + ck.optimizer_kind + "' but this run's optimizer is '" +
                             opt.kind() + "' (train.optimizer); resume with the same optimizer or start a new run directory");
  const std::vector<core::OptimizerState> states = opt.state();
  const size_t common = std::min(states.size(), ck.optimizer.size());
  // Names first, over the whole list, so that the error points at the first state that differs.
  for (size_t i = 0; i < common; ++i)
    if (states[i].name != ck.optimizer[i].first)
      throw std::runtime_error(path + ": optimizer state '" + ck.optimizer[i].first + "' where '" + states[i].name +
                               "' was expected (the checkpoint's trainable parameters are not this run's)");
  if (states.size() != ck.optimizer.size()) {
    const bool run_has_more = states.size() > ck.optimizer.size();
    const std::string first = run_has_more ? states[common].name : ck.optimizer[common].first;
    throw std::runtime_error(path + ": the checkpoint has " + std::to_string(ck.optimizer.size()) +
                             " optimizer state tensors, this run's optimizer " + std::to_string(states.size()) +
                             "; the first unmatched is '" + first + "' (" +
                             (run_has_more ? "missing from the checkpoint" : "not in this run") + ")");
  }
  for (size_t i = 0; i < states.size(); ++i) {
    const core::OptimizerState& s = states[i];
    const core::Tensor& whole = ck.optimizer[i].second;
    const core::ShardSpec& spec = s.param->shard;
    const core::Shape want = spec.sharded() ? spec.full : s.tensor->shape();
    if (whole.dtype() != s.dtype)
      throw std::runtime_error(path + ": optimizer state '" + s.name + "' is " + core::dtype_name(whole.dtype()) +
                               " in the checkpoint, this run's optimizer holds " + core::dtype_name(s.dtype));
    if (whole.shape() != want)
      throw std::runtime_error(path + ": optimizer state '" + s.name + "' has shape " + core::shape_str(whole.shape()) +
                               " in the checkpoint, this run expects " + core::shape_str(want));
  }
  // Checked in full before anything is copied, so a mismatch leaves the optimizer as it was.
  for (size_t i = 0; i < states.size(); ++i) {
    const core::OptimizerState& s = states[i];
    const core::Tensor& whole = ck.optimizer[i].second;
    const core::ShardSpec& spec = s.param->shard;
    if (spec.sharded()) s.tensor->copy_from(core::shard_of(whole, spec, core::MemCategory::workspace));
    else s.tensor->copy_from(whole);
  }
}

std::vector<std::pair<std::string, core::Tensor>> gather_optimizer_state(
    core::Optimizer& opt, const std::function<core::Tensor(const core::Tensor&, const core::ShardSpec&)>& gather) {
  std::vector<std::pair<std::string, core::Tensor>> out;
  for (const core::OptimizerState& s : opt.state()) out.emplace_back(s.name, gather(*s.tensor, s.param->shard));
  return out;
}

}  // namespace ladder::apps
