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

namespace {
// op(row, counter offset of the row's first column within its sample, sequence) for every token row.
template <class Op>
void by_token_rows(const TokenBatch& b, int width, int full_width, int col0, Op op) {
#pragma omp parallel for schedule(static) if (size_t(b.B) * b.T * width >= (1 << 14))
  for (int i = 0; i < b.B; ++i)
    for (int t = 0; t < b.T; ++t) op(size_t(i) * b.T + t, uint64_t(t) * uint64_t(full_width) + uint64_t(col0), i);
}
}  // namespace

void sequence_dropout_columns_forward(float* out, const float* in, const TokenBatch& b, int width, int full_width,
                                      int col0, int max_positions, float p, uint64_t seed, const SampleKeys& samples) {
  by_token_rows(b, width, full_width, col0, [&](size_t row, uint64_t within, int i) {
    const uint64_t base = uint64_t(samples.of(i)) * uint64_t(max_positions) * uint64_t(full_width);
    dropout_forward_serial(out + row * width, in + row * width, size_t(width), p, seed, base + within);
  });
}

void sequence_dropout_columns_backward(float* dx, const float* dy, const TokenBatch& b, int width, int full_width,
                                       int col0, int max_positions, float p, uint64_t seed, const SampleKeys& samples) {
  by_token_rows(b, width, full_width, col0, [&](size_t row, uint64_t within, int i) {
    const uint64_t base = uint64_t(samples.of(i)) * uint64_t(max_positions) * uint64_t(full_width);
    dropout_backward_serial(dx + row * width, dy + row * width, size_t(width), p, seed, base + within);
  });
}

}  // namespace ladder::core
