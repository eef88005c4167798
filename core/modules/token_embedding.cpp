#include "core/modules/token_embedding.h"

#include <algorithm>
#include <stdexcept>

#include "core/kernels/embedding.h"

namespace ladder::core {

void TokenEmbedding::forward(float* out, const int32_t* ids, int N, bool accumulate) const {
  if (sharded()) {
    if (accumulate) throw std::logic_error("a vocabulary-parallel embedding overwrites its output");
    const int P = extra ? int(extra->value.dim(0)) : 0;
    const int rows = int(table->value.dim(0));
    const bool lead = tp->rank() == 0;
    for (int n = 0; n < N; ++n)
      if (ids[n] < 0 || ids[n] >= vocab + P)
        throw std::out_of_range("token id " + std::to_string(ids[n]) + " outside [0, " + std::to_string(vocab + P) + ")");
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const int id = ids[n];
      const float* row = nullptr;
      if (id >= row0 && id < row0 + rows) row = table->w() + size_t(id - row0) * C;
      else if (id >= vocab && lead) row = extra->w() + size_t(id - vocab) * C;
      float* o = out + size_t(n) * C;
      if (row) std::copy(row, row + C, o);
      else std::fill(o, o + C, 0.0f);
    }
    reduce_from_region(tp, out, size_t(N) * C);
    return;
  }
  if (!extra) {
    embedding_forward(out, ids, table->w(), N, C, vocab, accumulate);
    return;
  }
  const int P = int(extra->value.dim(0));
  for (int n = 0; n < N; ++n)
    if (ids[n] < 0 || ids[n] >= vocab + P)
      throw std::out_of_range("token id " + std::to_string(ids[n]) + " outside [0, " + std::to_string(vocab + P) + ")");
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* row = ids[n] < vocab ? table->w() + size_t(ids[n]) * C : extra->w() + size_t(ids[n] - vocab) * C;
    float* o = out + size_t(n) * C;
    if (accumulate)
      for (int c = 0; c < C; ++c) o[c] += row[c];
    else
      for (int c = 0; c < C; ++c) o[c] = row[c];
  }
}

void TokenEmbedding::backward(const float* dout, const int32_t* ids, int N) const {
  if (extra && table->trainable)
    throw std::logic_error("a trainable vocabulary with extra prompt rows is not supported");
  if (table->trainable && sharded()) {
    float* g = table->g();
    const int rows = int(table->value.dim(0));
    for (int n = 0; n < N; ++n)  // this rank's rows only; serial keeps repeated ids race-free
      if (ids[n] >= row0 && ids[n] < row0 + rows)
        for (int c = 0; c < C; ++c) g[size_t(ids[n] - row0) * C + c] += dout[size_t(n) * C + c];
  } else if (table->trainable) {
    embedding_backward(table->g(), dout, ids, N, C);
  }
  if (extra && extra->trainable) {
    float* g = extra->g();
    for (int n = 0; n < N; ++n)  // few prompt positions: a serial pass keeps the accumulation race-free
      if (ids[n] >= vocab)
        for (int c = 0; c < C; ++c) g[size_t(ids[n] - vocab) * C + c] += dout[size_t(n) * C + c];
  }
}

}  // namespace ladder::core
