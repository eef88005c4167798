#pragma once
// A GLUE split tokenized for a model: one Encoding per example (special tokens in place, no padding) plus
// its label (classification) or score (STS-B regression). Tokenization runs in parallel.
#include <vector>

#include "data/glue/glue_reader.h"
#include "data/glue/glue_task.h"
#include "data/text_encoder.h"

namespace ladder::data {

struct GlueSplit {
  GlueTask task;
  std::vector<Encoding> enc;
  std::vector<int32_t> labels;  // -1 when unlabeled
  std::vector<float> scores;    // STS-B
  std::vector<int64_t> lengths() const;
  size_t size() const { return enc.size(); }
};

// max_examples > 0 keeps the first rows only.
GlueSplit tokenize_glue(GlueTask task, const std::vector<GlueExample>& rows, const TextEncoder& tok, int max_len,
                        int max_examples = 0);

}  // namespace ladder::data
