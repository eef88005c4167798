#include "core/kernels/embedding.h"
#include "core/kernels/hot_kernel.h"

#include <cstddef>
#include <stdexcept>
#include <string>

namespace ladder::core {

// out: [N, C]; table: [rows, C]. Ids are validated before the parallel copy (nothing throws inside it).
LADDER_HOT_KERNEL void embedding_forward(float* out, const int32_t* ids, const float* table, int N, int C, int rows, bool accumulate) {
  for (int n = 0; n < N; n++) {
    if (ids[n] < 0 || ids[n] >= rows)
      throw std::out_of_range("embedding_forward: id " + std::to_string(ids[n]) + " at position " + std::to_string(n) +
                              " is outside [0, " + std::to_string(rows) + ")");
  }
#pragma omp parallel for schedule(static) if (size_t(N) * C >= (1 << 14))
  for (int n = 0; n < N; n++) {
    const float* t = table + size_t(ids[n]) * C;
    float* o = out + size_t(n) * C;
    if (accumulate) {
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] += t[c];
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = t[c];
    }
  }
}

// dtable: [rows, C] ACCUMULATES dout [N, C] into the rows named by ids. Threads own blocks of columns and
// sweep all N positions in order, so repeated ids never race and the sum order is fixed.
LADDER_HOT_KERNEL void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int N, int C) {
  constexpr int kBlock = 64;
  int nblocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (size_t(N) * C >= (1 << 14))
  for (int blk = 0; blk < nblocks; blk++) {
    int c0 = blk * kBlock, c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int n = 0; n < N; n++) {
      float* t = dtable + size_t(ids[n]) * C;
      const float* d = dout + size_t(n) * C;
#pragma omp simd
      for (int c = c0; c < c1; c++) t[c] += d[c];
    }
  }
}

}  // namespace ladder::core
