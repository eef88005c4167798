#include "parallel/tensor_parallel_group.h"

#include <chrono>

namespace ladder::parallel {

void CommTensorParallelGroup::all_reduce_sum(float* data, size_t count) {
  const auto t0 = std::chrono::steady_clock::now();
  comm_.all_reduce(data, count, ReduceOp::sum);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bytes_ += count * sizeof(float);
  ++calls_;
}

}  // namespace ladder::parallel
