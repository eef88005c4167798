#include "core/modules/step_context.h"

#include "core/kernels/dropout.h"

namespace ladder::core {

void sequence_dropout_forward(float* out, const float* in, const TokenBatch& b, int width, int max_positions,
                              float p, uint64_t seed, const SampleKeys& samples) {
  const size_t seq = size_t(b.T) * width;
  // One sequence per iteration: a sequence alone is usually too short to split across threads.
#pragma omp parallel for schedule(static) if (size_t(b.B) * seq >= (1 << 14))
  for (int i = 0; i < b.B; ++i) {
    uint64_t offset = uint64_t(samples.of(i)) * uint64_t(max_positions) * uint64_t(width);
    dropout_forward_serial(out + i * seq, in + i * seq, seq, p, seed, offset);
  }
}

void sequence_dropout_backward(float* dx, const float* dy, const TokenBatch& b, int width, int max_positions,
                               float p, uint64_t seed, const SampleKeys& samples) {
  const size_t seq = size_t(b.T) * width;
#pragma omp parallel for schedule(static) if (size_t(b.B) * seq >= (1 << 14))
  for (int i = 0; i < b.B; ++i) {
    uint64_t offset = uint64_t(samples.of(i)) * uint64_t(max_positions) * uint64_t(width);
    dropout_backward_serial(dx + i * seq, dy + i * seq, seq, p, seed, offset);
  }
}

}  // namespace ladder::core
