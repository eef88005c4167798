#pragma once
// GradientBuckets: data-parallel gradient averaging that overlaps backward (flashlight's coalescing
// reducer, PyTorch DDP's buckets). Spans are given in the order backward produces them (usually reverse
// layer order) and grouped, in that order, into buckets of at most `bucket_bytes` (a span larger than that
// gets a bucket of its own). When the last span of a bucket is marked ready, the bucket's non-blocking
// all-reduce (average) starts; finish() starts what is left and waits for everything.
//
// Memory: a bucket whose spans tile one contiguous address range (e.g. neighbours in
// ParameterRegistry's single gradient buffer, in either order) is reduced in place on that range. Other
// buckets are packed into one staging buffer allocated at construction (MemCategory::communication) and
// unpacked after the wait. So a step allocates nothing (besides MPI's own request objects).
//
// Ordering: buckets are launched strictly in index order (a ready bucket waits for earlier ones to be
// launched), so every rank issues the same collectives in the same order even if spans become ready in a
// different order on different ranks; MPI and NCCL require that.
//
// Per step: call mark_ready(i) once per span i (any order, optional), then finish() once before the
// optimizer reads the gradients. Buffers must not be written between mark_ready and finish.
//
// A trainer, once after ParameterRegistry::allocate_gradients():
//   std::vector<GradSpan> spans;                       // backward order: last registered first
//   auto tr = registry.trainable();
//   for (auto it = tr.rbegin(); it != tr.rend(); ++it) spans.push_back({(*it)->name, (*it)->g(), size_t((*it)->grad.numel())});
//   GradientBuckets buckets(grid.dp_comm(), spans);    // in place: the registry's gradients are one buffer
// and every step (with gradient accumulation: only on the last micro-batch):
//   zero_grad; forward; backward, calling buckets.mark_ready(i) when span i is final (optional: without
//   it everything is reduced in finish(), correct but not overlapped); buckets.finish(); optimizer step.
// The average assumes each rank's loss is the mean over an equal-sized local batch.
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"
#include "parallel/communicator.h"

namespace ladder::parallel {

struct GradSpan {
  std::string name;
  float* data = nullptr;
  size_t count = 0;  // floats
};

struct GradientBucket {
  size_t first = 0, last = 0;  // spans [first, last)
  size_t count = 0;            // floats in the bucket
  float* in_place = nullptr;   // start of the contiguous range reduced in place, or nullptr (staged)
  size_t staging_offset = 0;   // where a staged bucket sits in the staging buffer
};

struct BucketStepStats {
  size_t bytes_reduced = 0;  // payload all-reduced this step (sum over buckets)
  size_t buckets = 0;
  size_t launched_early = 0;  // buckets started by mark_ready, i.e. overlapped with backward
  double finish_ms = 0;       // time spent in finish() (launching the rest + waiting)
};

class GradientBuckets {
 public:
  static constexpr size_t kDefaultBucketBytes = size_t(4) << 20;

  // `comm` must outlive this object; on a device communicator (NCCL) the spans are device pointers and
  // only in-place buckets are supported (a non-contiguous bucket is an error).
  GradientBuckets(Communicator& comm, std::vector<GradSpan> spans, size_t bucket_bytes = kDefaultBucketBytes);

  // Span i's gradient is final for this step. Throws if i is out of range or already marked this step.
  void mark_ready(size_t span_index);
  // Launches every bucket not launched yet, waits for all, unpacks staged buckets; resets for the next step.
  void finish();

  const std::vector<GradientBucket>& buckets() const { return buckets_; }
  const std::vector<GradSpan>& spans() const { return spans_; }
  size_t bucket_bytes() const { return bucket_bytes_; }
  const BucketStepStats& last_step() const { return last_; }
  // Totals over every finished step (for a run report).
  size_t total_bytes_reduced() const { return total_bytes_; }
  double total_finish_ms() const { return total_finish_ms_; }
  size_t steps() const { return steps_; }

 private:
  void launch_ready_in_order();
  void launch(size_t b);

  Communicator& comm_;
  std::vector<GradSpan> spans_;
  size_t bucket_bytes_;
  std::vector<GradientBucket> buckets_;
  std::vector<size_t> bucket_of_span_;
  std::vector<size_t> pending_;       // per bucket: spans not yet marked this step
  std::vector<char> marked_;          // per span
  std::vector<CommHandle> handles_;   // per bucket
  size_t next_launch_ = 0;            // buckets [0, next_launch_) are launched this step
  core::Tensor staging_;
  BucketStepStats current_, last_;
  size_t total_bytes_ = 0, steps_ = 0;
  double total_finish_ms_ = 0;
};

}  // namespace ladder::parallel
