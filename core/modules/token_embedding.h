#pragma once
// Token embedding lookup with optional extra rows: ids in [0, vocab) read the pretrained table, ids in
// [vocab, vocab + extra rows) read `extra` (prompt tuning's soft tokens). An id outside both is an error.
#include "core/modules/parameter.h"

namespace ladder::core {

struct TokenEmbedding {
  Parameter* table = nullptr;  // [vocab, C]
  Parameter* extra = nullptr;  // [P, C] or null
  int vocab = 0, C = 0;

  // out [N, C] OVERWRITTEN (or ACCUMULATED) with the rows of ids.
  void forward(float* out, const int32_t* ids, int N, bool accumulate) const;
  // Accumulates dout into the trainable tables' gradients. A trainable pretrained table together with extra
  // rows is not supported (prompt tuning freezes the vocabulary).
  void backward(const float* dout, const int32_t* ids, int N) const;
  bool trainable() const { return table->trainable || (extra && extra->trainable); }
};

}  // namespace ladder::core
