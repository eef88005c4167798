#pragma once
// How a Linear reads its weight: through a view that multiplies by it without the caller knowing how it is
// held. Dense f32 runs one GEMM on the stored values (trainable weights are always dense f32); a frozen
// weight held in 16 bits (bf16, f16) is widened a tile of rows at a time into a small f32 workspace and
// multiplied tile by tile, so the whole f32 weight never exists. Later views (NF4 and GGUF blocks, device
// memory) implement the same two products.
#include <cstddef>

#include "core/modules/parameter.h"
#include "core/tensor/dtype.h"

namespace ladder::core {

// Hugging Face's nn.Linear stores [out, in]; GPT-2's Conv1D [in, out].
enum class WeightLayout { out_in, in_out };

class WeightView {
 public:
  WeightView(const Parameter& weight, int in, int out, WeightLayout layout);

  // y [N, out] (stride ldy) = x [N, in] (stride ldx) times the weight + beta * y.
  void forward(int N, const float* x, int ldx, float beta, float* y, int ldy) const;
  // dx [N, in] (stride ldx) = dy [N, out] (stride ldy) times the weight's transpose + beta * dx.
  void backward_input(int N, const float* dy, int ldy, float beta, float* dx, int ldx) const;

  DType dtype() const { return dtype_; }

 private:
  const void* data_;
  DType dtype_;
  int in_, out_;
  WeightLayout layout_;
};

// Rows of a 16-bit weight widened per tile: at most this many f32 values (4 MiB) at a time. Large enough
// that a tile is one GEMM of a BERT-base-sized weight (fewer, larger GEMMs keep BLAS at its speed), small
// beside the f32 copy of an LLM's weight that it replaces.
inline constexpr size_t kWeightTileValues = size_t(1) << 20;

}  // namespace ladder::core
