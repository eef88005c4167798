#pragma once
// One tokenized example as a BERT-style model consumes it: ids with the special tokens in place,
// the segment of each token (0 = first text, 1 = second) and a mask of real tokens. No padding here:
// the batcher pads, so every vector has the same length and attention_mask is all ones.
#include <cstdint>
#include <vector>

namespace ladder::data {

struct Encoding {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_type_ids;
  std::vector<int32_t> attention_mask;
};

}  // namespace ladder::data
