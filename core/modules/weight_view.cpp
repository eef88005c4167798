#include "core/modules/weight_view.h"

#include <algorithm>
#include <stdexcept>

#include "core/kernels/gemm.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

namespace {

// One tile buffer per thread that multiplies (modules run one at a time per rank), accounted as workspace.
float* tile_buffer() {
  thread_local Tensor buf;
  Tensor::ensure(buf, {int64_t(kWeightTileValues)}, DType::f32, MemCategory::workspace);
  return buf.data<float>();
}

// Rows [r0, r0 + n) of a row-major 16-bit matrix with `cols` columns, widened to f32 (contiguous).
const float* widen_rows(const void* data, DType dtype, int cols, int r0, int n) {
  float* out = tile_buffer();
  const size_t elem = dtype_bytes(dtype, 1);
  const char* src = static_cast<const char*>(data) + size_t(r0) * size_t(cols) * elem;
  const size_t total = size_t(n) * size_t(cols);
  const size_t chunk = 4096;
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < (total + chunk - 1) / chunk; ++c) {
    const size_t b = c * chunk, e = std::min(total, b + chunk);
    convert_to_f32(dtype, src + b * elem, out + b, e - b);
  }
  return out;
}

int tile_rows(int cols) { return std::max(1, int(kWeightTileValues / size_t(std::max(1, cols)))); }

}  // namespace

WeightView::WeightView(const Parameter& weight, int in, int out, WeightLayout layout)
    : data_(weight.value.raw()), dtype_(weight.value.dtype()), in_(in), out_(out), layout_(layout) {
  if (dtype_ != DType::f32 && dtype_ != DType::bf16 && dtype_ != DType::f16)
    throw std::logic_error("weight '" + weight.name + "' is held as " + dtype_name(dtype_) + ", which no Linear view reads");
  if (dtype_ != DType::f32 && weight.trainable)
    throw std::logic_error("weight '" + weight.name + "' is trainable but held as " + dtype_name(dtype_));
}

void WeightView::forward(int N, const float* x, int ldx, float beta, float* y, int ldy) const {
  const bool t = layout_ == WeightLayout::out_in;
  if (dtype_ == DType::f32) {
    gemm(false, t, N, out_, in_, 1.0f, x, ldx, static_cast<const float*>(data_), t ? in_ : out_, beta, y, ldy);
    return;
  }
  if (t) {  // W [out, in]: each tile of output features is one GEMM into its columns of y
    const int rows = tile_rows(in_);
    for (int o0 = 0; o0 < out_; o0 += rows) {
      const int n = std::min(rows, out_ - o0);
      gemm(false, true, N, n, in_, 1.0f, x, ldx, widen_rows(data_, dtype_, in_, o0, n), in_, beta, y + o0, ldy);
    }
  } else {  // W [in, out]: each tile of input features adds its share of every output
    const int rows = tile_rows(out_);
    for (int i0 = 0; i0 < in_; i0 += rows) {
      const int n = std::min(rows, in_ - i0);
      gemm(false, false, N, out_, n, 1.0f, x + i0, ldx, widen_rows(data_, dtype_, out_, i0, n), out_, i0 ? 1.0f : beta, y, ldy);
    }
  }
}

void WeightView::backward_input(int N, const float* dy, int ldy, float beta, float* dx, int ldx) const {
  const bool t = layout_ == WeightLayout::out_in;
  if (dtype_ == DType::f32) {
    gemm(false, !t, N, in_, out_, 1.0f, dy, ldy, static_cast<const float*>(data_), t ? in_ : out_, beta, dx, ldx);
    return;
  }
  if (t) {  // dx = dy W, W [out, in]: each tile of output features adds its share
    const int rows = tile_rows(in_);
    for (int o0 = 0; o0 < out_; o0 += rows) {
      const int n = std::min(rows, out_ - o0);
      gemm(false, false, N, in_, n, 1.0f, dy + o0, ldy, widen_rows(data_, dtype_, in_, o0, n), in_, o0 ? 1.0f : beta, dx, ldx);
    }
  } else {  // dx = dy W^T, W [in, out]: each tile of input features is one GEMM into its columns of dx
    const int rows = tile_rows(out_);
    for (int i0 = 0; i0 < in_; i0 += rows) {
      const int n = std::min(rows, in_ - i0);
      gemm(false, true, N, n, out_, 1.0f, dy, ldy, widen_rows(data_, dtype_, out_, i0, n), out_, beta, dx + i0, ldx);
    }
  }
}

}  // namespace ladder::core
