#pragma once
// Reads an activation store: opens it, checks that it is complete and what it claims to be, and reads batches
// of arbitrary rows as float32, trimmed to the longest real row of the batch (dynamic padding).
//
// Threads: Debian's parallel HDF5 is not built thread-safe, so at most one thread may be inside HDF5 at a
// time, in the whole process (any file). A reader is used by one thread; a PrefetchingReader's background
// thread owns its reader while it runs, and other HDF5 work in the process (a checkpoint save, another
// store) goes inside `auto hold = prefetcher.hold_hdf5();`.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor/memory.h"
#include "data/activation_store/store_schema.h"
#include "data/padded_batch.h"

namespace ladder::core {
class Hdf5File;
class Hdf5Dataset;
}  // namespace ladder::core

namespace ladder::data {

struct StoreBatch {
  std::vector<uint64_t> rows;     // the store rows, in the order asked for
  PaddedBatch tokens;             // B = rows.size(), T = longest real row; ids, types (0 when absent), mask
  std::vector<int32_t> labels;    // [B] class ids (LabelKind::integer)
  std::vector<float> scores;      // [B] targets (LabelKind::real)
  std::vector<int64_t> layers;    // which layers `hidden` holds, in that order
  std::vector<std::vector<float>> hidden;  // per layer [B, T, H], float32 (unless hidden_bits holds them)
  // read_batch(..., keep_16bit) on an f16 or bf16 store: per layer [B, T, H] in the stored bits instead of
  // `hidden` (half the memory, and no conversion on the reading thread); hidden_dtype says which.
  core::DType hidden_dtype = core::DType::f32;
  std::vector<std::vector<uint16_t>> hidden_bits;
  std::vector<float> logits;      // [B, C] when the store has teacher logits
  // The hidden states' bytes, accounted as saved activations while the batch lives (a batch waiting in a
  // prefetch queue included): they are what the taps are online.
  core::TrackedBytes hidden_bytes;
};

class ActivationStoreReader {
 public:
  // Opens `path` and reads its identity. Throws, naming the file, when it is missing, not HDF5, truncated,
  // not an activation store, of a newer version, incomplete (no `complete` attribute: its writer did not
  // finish), or when a dataset's shape or type disagrees with the identity.
  explicit ActivationStoreReader(const std::string& path);
  ~ActivationStoreReader();
  ActivationStoreReader(ActivationStoreReader&&) noexcept;
  ActivationStoreReader(const ActivationStoreReader&) = delete;

  const StoreIdentity& identity() const { return id_; }
  const std::string& path() const { return path_; }
  uint64_t num_rows() const { return uint64_t(id_.num_rows); }
  // Throws naming the first field that differs (see data::check_matches).
  void check_matches(const StoreExpectation& expected) const { data::check_matches(id_, expected, path_); }

  // Rows in any order (repeats allowed), each < num_rows(). `layers` picks hidden layers (empty: all, in the
  // store's order); a layer the store lacks is an error. Reads only the first T columns, T being the longest
  // real row among them.
  StoreBatch read_batch(const std::vector<uint64_t>& rows, const std::vector<int64_t>& layers = {},
                        bool keep_16bit = false) const;
  // Real tokens per row (the attention mask summed), for length-bucketed sampling; reads only the mask.
  std::vector<int64_t> row_lengths() const;

 private:
  struct Files;
  std::string path_;
  StoreIdentity id_;
  std::unique_ptr<Files> files_;
};

// Reads `plan` (a list of row lists, one per batch, e.g. from a sampler) ahead of the consumer on one
// background thread, keeping at most `depth` finished batches waiting. The reader is borrowed: it must
// outlive the prefetcher and nothing else may use it meanwhile.
class PrefetchingReader {
 public:
  PrefetchingReader(const ActivationStoreReader& reader, std::vector<std::vector<uint64_t>> plan,
                    std::vector<int64_t> layers = {}, size_t depth = 2, bool keep_16bit = false);
  // Stops the background thread after its current read, and joins it.
  ~PrefetchingReader();
  PrefetchingReader(const PrefetchingReader&) = delete;
  PrefetchingReader& operator=(const PrefetchingReader&) = delete;

  // The next batch of the plan, in plan order; nullopt after the last. Waits only when the background read
  // has not finished yet. An exception thrown by a background read is rethrown here, by this and every later
  // call (the batches before it are delivered first).
  std::optional<StoreBatch> next();

  // Blocks the background thread from starting another read (waiting for the one in flight) until the
  // returned lock is released: hold it around any other HDF5 call in the process.
  std::unique_lock<std::mutex> hold_hdf5();

 private:
  void run();
  const ActivationStoreReader& reader_;
  std::vector<std::vector<uint64_t>> plan_;
  std::vector<int64_t> layers_;
  size_t depth_;
  bool keep_16bit_;
  std::mutex mu_;        // guards queue_, error_, stop_, produced_
  std::mutex io_mu_;     // held by the background thread while inside HDF5
  std::condition_variable cv_;
  std::deque<StoreBatch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  size_t produced_ = 0, consumed_ = 0;
  std::thread thread_;
};

}  // namespace ladder::data
