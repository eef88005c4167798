#include "parallel/gradient_buckets.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace ladder::parallel {

namespace {

// The start of the range when the spans tile one contiguous range in some order, else nullptr.
float* contiguous_start(const std::vector<GradSpan>& spans, size_t first, size_t last) {
  std::vector<const GradSpan*> by_address;
  for (size_t i = first; i < last; ++i)
    if (spans[i].count) by_address.push_back(&spans[i]);
  if (by_address.empty()) return nullptr;
  std::sort(by_address.begin(), by_address.end(), [](const GradSpan* a, const GradSpan* b) { return a->data < b->data; });
  for (size_t k = 1; k < by_address.size(); ++k)
    if (by_address[k - 1]->data + by_address[k - 1]->count != by_address[k]->data) return nullptr;
  return by_address.front()->data;
}

}  // namespace

GradientBuckets::GradientBuckets(Communicator& comm, std::vector<GradSpan> spans, size_t bucket_bytes)
    : comm_(comm), spans_(std::move(spans)), bucket_bytes_(bucket_bytes) {
  if (bucket_bytes_ < sizeof(float)) throw std::invalid_argument("GradientBuckets: bucket size must be at least 4 bytes");
  for (const auto& s : spans_)
    if (s.count && !s.data) throw std::invalid_argument("GradientBuckets: span '" + s.name + "' has a null pointer");

  // Greedy grouping in backward order: close a bucket when the next span would overflow it.
  bucket_of_span_.resize(spans_.size());
  size_t staged = 0;
  for (size_t i = 0; i < spans_.size();) {
    GradientBucket b;
    b.first = i;
    while (i < spans_.size() && (b.count == 0 || (b.count + spans_[i].count) * sizeof(float) <= bucket_bytes_)) {
      b.count += spans_[i].count;
      bucket_of_span_[i] = buckets_.size();
      ++i;
    }
    b.last = i;
    b.in_place = contiguous_start(spans_, b.first, b.last);
    if (!b.in_place && b.count) {
      if (comm_.on_device())
        throw std::invalid_argument("GradientBuckets: spans '" + spans_[b.first].name + "' .. '" + spans_[b.last - 1].name +
                                    "' are not contiguous; a device communicator needs one contiguous gradient buffer");
      b.staging_offset = staged;
      staged += b.count;
    }
    buckets_.push_back(b);
  }
  // The only allocation: staging for non-contiguous buckets, once.
  if (staged) staging_ = core::Tensor::empty({int64_t(staged)}, core::DType::f32, core::MemCategory::communication);

  pending_.resize(buckets_.size());
  handles_.resize(buckets_.size());
  marked_.assign(spans_.size(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].last - buckets_[b].first;
}

void GradientBuckets::launch(size_t b) {
  const GradientBucket& bk = buckets_[b];
  current_.buckets++;
  current_.bytes_reduced += bk.count * sizeof(float);
  if (bk.count == 0) return;
  float* buf = bk.in_place;
  if (!buf) {
    buf = staging_.data<float>() + bk.staging_offset;
    size_t off = 0;
    for (size_t i = bk.first; i < bk.last; ++i) {
      std::memcpy(buf + off, spans_[i].data, spans_[i].count * sizeof(float));
      off += spans_[i].count;
    }
  }
  handles_[b] = comm_.all_reduce_async(buf, bk.count, ReduceOp::average);
}

void GradientBuckets::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && pending_[next_launch_] == 0) {
    launch(next_launch_++);
    current_.launched_early++;
  }
}

void GradientBuckets::mark_ready(size_t span_index) {
  if (span_index >= spans_.size())
    throw std::out_of_range("GradientBuckets::mark_ready: span " + std::to_string(span_index) + " of " + std::to_string(spans_.size()));
  if (marked_[span_index])
    throw std::logic_error("GradientBuckets::mark_ready: gradient '" + spans_[span_index].name + "' marked twice in one step");
  marked_[span_index] = 1;
  if (--pending_[bucket_of_span_[span_index]] == 0) launch_ready_in_order();
  // MPI progresses non-blocking collectives only inside MPI calls; polling here moves them along while
  // backward computes (a no-op for NCCL, which progresses on the GPU).
  for (size_t b = 0; b < next_launch_; ++b) handles_[b].test();
}

void GradientBuckets::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    handles_[b].wait();
    const GradientBucket& bk = buckets_[b];
    if (bk.in_place || bk.count == 0) continue;
    const float* buf = staging_.data<float>() + bk.staging_offset;
    size_t off = 0;
    for (size_t i = bk.first; i < bk.last; ++i) {
      std::memcpy(spans_[i].data, buf + off, spans_[i].count * sizeof(float));
      off += spans_[i].count;
    }
  }
  current_.finish_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  last_ = current_;
  current_ = {};
  total_bytes_ += last_.bytes_reduced;
  total_finish_ms_ += last_.finish_ms;
  ++steps_;
  next_launch_ = 0;
  std::fill(marked_.begin(), marked_.end(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].last - buckets_[b].first;
}

}  // namespace ladder::parallel
