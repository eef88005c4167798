#include "data/glue/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace ladder::data {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, n) by rejection: unbiased, and defined by us rather than by the standard library.
uint64_t below(std::mt19937_64& g, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = g();
  while (x >= limit);
  return x % n;
}

template <class T>
void fisher_yates(std::vector<T>& v, std::mt19937_64& g) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(g, i)]);
}

}  // namespace

BucketSampler::BucketSampler(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, bool drop_last,
                             int64_t bucket_batches)
    : lengths_(std::move(lengths)), batch_size_(batch_size), seed_(seed), drop_last_(drop_last),
      bucket_batches_(bucket_batches) {
  if (batch_size_ < 1) throw std::invalid_argument("BucketSampler: batch_size must be >= 1");
  if (bucket_batches_ < 1) throw std::invalid_argument("BucketSampler: bucket_batches must be >= 1");
  set_epoch(0);
}

void BucketSampler::shard(int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::invalid_argument("BucketSampler::shard: rank " + std::to_string(rank) + " of world " +
                                std::to_string(world));
  rank_ = rank, world_ = world;
  set_epoch(epoch_);
}

std::vector<std::vector<int64_t>> BucketSampler::epoch_batches(int64_t epoch) const {
  std::mt19937_64 gen(splitmix64(seed_ ^ splitmix64(uint64_t(epoch))));
  std::vector<int64_t> ids(lengths_.size());
  std::iota(ids.begin(), ids.end(), int64_t(0));
  fisher_yates(ids, gen);

  std::vector<std::vector<int64_t>> batches;
  const size_t bucket = size_t(batch_size_ * bucket_batches_);
  for (size_t start = 0; start < ids.size(); start += bucket) {
    auto first = ids.begin() + ptrdiff_t(start), last = ids.begin() + ptrdiff_t(std::min(ids.size(), start + bucket));
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return lengths_[size_t(a)] < lengths_[size_t(b)]; });
    for (auto it = first; it < last; it += std::min<ptrdiff_t>(batch_size_, last - it))
      batches.emplace_back(it, it + std::min<ptrdiff_t>(batch_size_, last - it));
  }
  if (drop_last_ && !batches.empty() && int64_t(batches.back().size()) < batch_size_) batches.pop_back();
  fisher_yates(batches, gen);

  if (world_ == 1) return batches;
  std::vector<std::vector<int64_t>> mine;
  const size_t usable = batches.size() - batches.size() % size_t(world_);
  for (size_t b = size_t(rank_); b < usable; b += size_t(world_)) mine.push_back(std::move(batches[b]));
  return mine;
}

int64_t BucketSampler::batches_per_epoch() const {
  const int64_t n = int64_t(lengths_.size());
  const int64_t total = drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  return total / world_;
}

void BucketSampler::set_epoch(int64_t epoch) {
  batches_ = epoch_batches(epoch);
  epoch_ = epoch, position_ = 0;
}

bool BucketSampler::next(std::vector<int64_t>& batch) {
  if (position_ >= int64_t(batches_.size())) return false;
  batch = batches_[size_t(position_++)];
  return true;
}

void BucketSampler::restore(const SamplerState& s) {
  set_epoch(s.epoch);
  if (s.position < 0 || s.position > int64_t(batches_.size()))
    throw std::invalid_argument("BucketSampler::restore: position " + std::to_string(s.position) + " outside epoch of " +
                                std::to_string(batches_.size()) + " batches");
  position_ = s.position;
}

}  // namespace ladder::data
