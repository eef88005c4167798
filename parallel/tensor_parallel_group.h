#pragma once
// The tensor-parallel group that core/'s sharded layers reduce over (core::TensorParallelGroup), backed by
// a Communicator (a ProcessGrid's tp_comm()). Each reduction is one blocking all-reduce; the time spent in
// them is counted for the run report.
#include "core/modules/tensor_parallel.h"
#include "parallel/communicator.h"

namespace ladder::parallel {

class CommTensorParallelGroup : public core::TensorParallelGroup {
 public:
  explicit CommTensorParallelGroup(Communicator& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void all_reduce_sum(float* data, size_t count) override;

  // Totals since construction (or the last reset).
  double seconds() const { return seconds_; }
  size_t bytes() const { return bytes_; }
  size_t calls() const { return calls_; }
  void reset_counters() { seconds_ = 0, bytes_ = 0, calls_ = 0; }

 private:
  Communicator& comm_;
  double seconds_ = 0;
  size_t bytes_ = 0, calls_ = 0;
};

}  // namespace ladder::parallel
