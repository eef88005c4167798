#pragma once
// Where a forward intermediate lives: in the layer's own saved activations when backward will read it, or
// in scratch shared by every layer when it will not (inference, frozen weights whose input nobody needs).
// This is how "forward saves only what backward needs" is kept without a second code path.
#include "core/tensor/tensor.h"

namespace ladder::core {

inline Tensor& activation_slot(bool keep, Tensor& saved, Tensor& scratch, const Shape& shape) {
  Tensor& t = keep ? saved : scratch;
  Tensor::ensure(t, shape, DType::f32, keep ? MemCategory::activations : MemCategory::workspace);
  return t;
}

// Pointer to a saved tensor, or nullptr when it was not saved (the consumer must not need it).
inline const float* saved_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

}  // namespace ladder::core
