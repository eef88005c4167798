#pragma once
// Writes an activation store: a frozen backbone's hidden states for a whole dataset split, plus the tokens,
// masks and labels they came from, into one HDF5 file (schema: docs/ACTIVATION_STORE.md).
//
// The row count N is fixed up front; rows are written in any order, in contiguous ranges, each padded to
// T = max_len. With an MPI communicator every rank of it opens the same file (parallel HDF5) and writes its
// own disjoint rows. The file is written as PATH.tmp and renamed to PATH by finish(), after the `complete`
// attribute, so a half-written store never carries the real name nor looks complete.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/activation_store/store_schema.h"
#include "data/padded_batch.h"

namespace ladder::data {

struct StoreWriterOptions {
  uint64_t chunk_rows = 32;        // rows per HDF5 chunk of every dataset (clamped to [1, N]); 1 for the
                                   // hidden states when checksummed (below)
  MPI_Comm comm = MPI_COMM_NULL;   // MPI_COMM_NULL: a plain serial file; otherwise every rank of comm writes
  // HDF5's Fletcher-32 filter on every dataset: a damaged chunk is a read error naming the file and dataset.
  // Reads of row lists then go through H5Dread, which verifies it (docs/ACTIVATION_STORE.md: what it costs).
  // Not for MPI files (parallel HDF5 1.10 writes filtered datasets only collectively): ignored under comm.
  bool checksum = true;
};

// `count` rows as the batcher and the backbone produce them, `width` tokens wide (width <= max_len; the
// writer pads each row to max_len; wherever the mask is 0 it stores id 0, type 0 and zero hidden states).
struct StoreRows {
  int width = 0;
  const int32_t* input_ids = nullptr;       // [count, width]
  const float* attention_mask = nullptr;    // [count, width], 1 = real token (PaddedBatch::mask)
  const int32_t* token_type_ids = nullptr;  // [count, width]; required when identity.token_types
  const int32_t* labels = nullptr;          // [count] class ids (-1 unlabeled), for LabelKind::integer
  const float* scores = nullptr;            // [count] targets, for LabelKind::real
  std::vector<const float*> hidden;         // one per identity.layers, in that order, each [count, width, H]
  const float* logits = nullptr;            // [count, C] when identity.num_logits > 0
};

// The token part of a StoreRows from a padded batch (ids, mask, token types, width); labels and hidden states
// are for the caller to fill.
StoreRows store_rows_from(const PaddedBatch& batch);

class ActivationStoreWriter {
 public:
  // Creates PATH.tmp with every dataset sized for id.num_rows rows and writes the identity attributes.
  // Collective when opt.comm is given (every rank passes the same identity and options).
  ActivationStoreWriter(std::string path, StoreIdentity id, StoreWriterOptions opt = {});
  // Without finish(), the temporary is removed (collectively under MPI: every rank must get here).
  ~ActivationStoreWriter();
  ActivationStoreWriter(const ActivationStoreWriter&) = delete;
  ActivationStoreWriter& operator=(const ActivationStoreWriter&) = delete;

  // Writes rows [first_row, first_row + count). Hidden states are converted from f32 to the store's dtype
  // (round to nearest even). Independent under MPI: ranks write disjoint ranges, each at its own pace.
  void write_rows(uint64_t first_row, uint64_t count, const StoreRows& rows);
  // Checks that every row was written (by some rank), sets `complete`, closes and renames PATH.tmp to PATH.
  // Collective under MPI. Throws, naming the missing rows, when some were never written.
  void finish();

  const StoreIdentity& identity() const { return id_; }
  const std::string& path() const { return path_; }

 private:
  struct Files;
  std::string path_;
  StoreIdentity id_;
  StoreWriterOptions opt_;
  int rank_ = 0;
  std::unique_ptr<Files> files_;
  std::vector<uint8_t> written_;  // per row: written by this rank
};

}  // namespace ladder::data
