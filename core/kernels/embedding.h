#pragma once
#include <cstdint>

namespace ladder::core {

// out[n, :] (+)= table[ids[n], :] for N ids of width C; accumulate=false overwrites.
// An id outside [0, rows) throws std::out_of_range naming the id.
void embedding_forward(float* out, const int32_t* ids, const float* table, int N, int C, int rows, bool accumulate);
// dtable[ids[n], :] += dout[n, :]  (ACCUMULATES; safe when ids repeat).
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int N, int C);

}  // namespace ladder::core
