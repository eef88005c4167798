#include "parallel/shard_gather.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace ladder::parallel {

core::Tensor gather_shards(const core::Tensor& local, const core::ShardSpec& spec, Communicator& tp, core::MemCategory cat) {
  if (!spec.sharded()) return local.to(core::DType::f32, cat);
  if (spec.parts != tp.size() || spec.index != tp.rank())
    throw std::invalid_argument("gather_shards: a " + spec.describe() + " shard on rank " + std::to_string(tp.rank()) +
                                " of a group of " + std::to_string(tp.size()));
  if (local.numel() != core::shape_numel(spec.local_shape()))
    throw std::invalid_argument("gather_shards: local tensor " + core::shape_str(local.shape()) + " is not the " +
                                spec.describe() + " shard");
  size_t most = 0;
  for (int p = 0; p < spec.parts; ++p) most = std::max(most, size_t(core::shape_numel(spec.local_shape_of(p))));
  std::vector<float> send(most, 0.0f), recv(most * size_t(spec.parts));
  const core::Tensor l32 = local.dtype() == core::DType::f32 ? local : local.to(core::DType::f32, core::MemCategory::workspace);
  std::copy(l32.data<float>(), l32.data<float>() + l32.numel(), send.begin());
  tp.all_gather(send.data(), recv.data(), most);
  core::Tensor full = core::Tensor::empty(spec.full, core::DType::f32, cat);
  for (int p = 0; p < spec.parts; ++p) core::place_shard(full.data<float>(), recv.data() + size_t(p) * most, spec, p);
  return full;
}

}  // namespace ladder::parallel
