#pragma once
// BucketSampler: deterministic, length-bucketed training batches.
// Per epoch: shuffle all example ids with a generator seeded from (seed, epoch); cut the shuffled list
// into buckets of `bucket_batches` batches; sort each bucket by length (stable, so ties keep shuffled
// order); cut buckets into batches; shuffle the batch order. Every example is in exactly one batch per
// epoch (only the final batch can be short; drop_last drops it). The generator is std::mt19937_64 with
// our own Fisher-Yates and bounded draw (std::shuffle and the <random> distributions are
// implementation-defined), so the same (lengths, options, seed, epoch) gives the same batches with any
// compiler on any machine.
// shard(rank, world): rank r takes batches r, r + world, r + 2*world, ... of the epoch's batch list,
// after dropping the last (num_batches % world) batches so that every rank runs the same number of
// steps (collectives stay in lock step); the dropped batches differ from epoch to epoch.
// state()/restore(): (epoch, batches this rank has taken in the epoch) resumes exactly.
#include <cstdint>
#include <vector>

namespace ladder::data {

struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;  // batches already returned by next() in this epoch (on this rank)
};

class BucketSampler {
 public:
  // lengths[i] = token count of example i. bucket_batches = 1 disables bucketing (plain random batches).
  BucketSampler(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed, bool drop_last = false,
                int64_t bucket_batches = 50);

  // Take every world-th batch starting at rank; call before set_epoch / restore.
  void shard(int rank, int world);
  // Start `epoch` from its first batch.
  void set_epoch(int64_t epoch);
  // The next batch of example ids in this epoch; false when the epoch is done.
  bool next(std::vector<int64_t>& batch);

  SamplerState state() const { return {epoch_, position_}; }
  void restore(const SamplerState& s);  // continues exactly where state() was taken

  // This rank's batches for an epoch, without touching the iteration state.
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;
  int64_t batches_per_epoch() const;  // on this rank
  int64_t num_examples() const { return int64_t(lengths_.size()); }

 private:
  std::vector<int64_t> lengths_;
  int64_t batch_size_;
  uint64_t seed_;
  bool drop_last_;
  int64_t bucket_batches_;
  int rank_ = 0, world_ = 1;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<std::vector<int64_t>> batches_;  // the current epoch's, for this rank
};

}  // namespace ladder::data
