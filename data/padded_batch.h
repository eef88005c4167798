#pragma once
// Dynamic padding: a batch is padded to its own longest row, not to the global maximum, and rows can be
// ordered by length so that batches waste little compute on padding.
#include <cstddef>
#include <vector>

#include "core/modules/step_context.h"
#include "data/tokenizer/encoding.h"

namespace ladder::data {

struct PaddedBatch {
  int B = 0, T = 0;
  std::vector<int32_t> ids, types;  // [B, T]
  std::vector<float> mask;          // [B, T], 1 = real token
  std::vector<int> lengths;         // [B]
  core::TokenBatch view() const { return {B, T, ids.data(), types.data(), mask.data()}; }
  long real_tokens() const;
};

// Pads encs[rows[i]] (i < rows.size()) with pad_id into `out` (reusing its capacity), to the longest row
// or to min_length when that is longer (fixed-length batches, e.g. to measure memory at a stated length).
void pad_batch(PaddedBatch& out, const std::vector<Encoding>& encs, const std::vector<size_t>& rows, int32_t pad_id,
               int min_length = 0);
// Row indices sorted by decreasing length (stable), so each batch holds rows of similar length.
std::vector<size_t> order_by_length(const std::vector<Encoding>& encs);

}  // namespace ladder::data
