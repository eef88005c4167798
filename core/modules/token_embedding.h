#pragma once
// Token embedding lookup with optional extra rows: ids in [0, vocab) read the pretrained table, ids in
// [vocab, vocab + extra rows) read `extra` (prompt tuning's soft tokens). An id outside both is an error.
#include "core/modules/parameter.h"
#include "core/modules/tensor_parallel_regions.h"

namespace ladder::core {

struct TokenEmbedding {
  Parameter* table = nullptr;  // [vocab, C]
  Parameter* extra = nullptr;  // [P, C] or null
  int vocab = 0, C = 0;
  // Vocabulary-parallel (tensor parallelism): `table` holds rows [row0, row0 + table rows) of the vocabulary;
  // forward writes those ids' rows, zeros elsewhere, and one all-reduce over `tp` completes the lookup.
  // Extra rows are replicated and added by tp rank 0 only. Backward needs no communication: the output
  // gradient is the same on every rank and each accumulates its own rows.
  int row0 = 0;
  TensorParallelGroup* tp = nullptr;
  bool sharded() const { return tp_active(tp); }

  // out [N, C] OVERWRITTEN (or ACCUMULATED; not when sharded) with the rows of ids.
  void forward(float* out, const int32_t* ids, int N, bool accumulate) const;
  // Accumulates dout into the trainable tables' gradients. A trainable pretrained table together with extra
  // rows is not supported (prompt tuning freezes the vocabulary).
  void backward(const float* dout, const int32_t* ids, int N) const;
  bool trainable() const { return table->trainable || (extra && extra->trainable); }
};

}  // namespace ladder::core
