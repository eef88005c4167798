#include "core/modules/tensor_parallel_regions.h"

namespace ladder::core {

void copy_to_region_backward(TensorParallelGroup* tp, float* grad, size_t count) {
  if (tp_active(tp)) tp->all_reduce_sum(grad, count);
}

void reduce_from_region(TensorParallelGroup* tp, float* data, size_t count) {
  if (tp_active(tp)) tp->all_reduce_sum(data, count);
}

Tensor gather_from_region(const Tensor& local, const ShardSpec& spec, TensorParallelGroup* tp, MemCategory cat) {
  return gather_whole(local, spec, tp, cat);
}

Tensor gather_from_region_backward(const Tensor& whole, const ShardSpec& spec, MemCategory cat) {
  return shard_of(whole, spec, cat);
}

}  // namespace ladder::core
