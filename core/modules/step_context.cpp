#include "core/modules/step_context.h"

#include "core/kernels/dropout.h"

namespace ladder::core {

void sequence_dropout_forward(float* out, const float* in, const TokenBatch& b, int width, int max_positions,
                              float p, uint64_t seed, int64_t first_row) {
  const size_t seq = size_t(b.T) * width;
  for (int i = 0; i < b.B; ++i) {
    uint64_t offset = uint64_t(first_row + i) * uint64_t(max_positions) * uint64_t(width);
    dropout_forward(out + i * seq, in + i * seq, seq, p, seed, offset);
  }
}

void sequence_dropout_backward(float* dx, const float* dy, const TokenBatch& b, int width, int max_positions,
                               float p, uint64_t seed, int64_t first_row) {
  const size_t seq = size_t(b.T) * width;
  for (int i = 0; i < b.B; ++i) {
    uint64_t offset = uint64_t(first_row + i) * uint64_t(max_positions) * uint64_t(width);
    dropout_backward(dx + i * seq, dy + i * seq, seq, p, seed, offset);
  }
}

}  // namespace ladder::core
