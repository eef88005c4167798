#pragma once
// Tensor: a typed, shaped view into reference-counted storage. Storage is either owned (64-byte aligned,
// tagged with a memory category) or borrowed (e.g. a memory-mapped safetensors region, kept alive by a keeper).
// Views (view, slice) share storage; nothing is copied unless a method says so.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/dtype.h"
#include "core/tensor/memory.h"

namespace ladder::core {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Storage {
 public:
  // Owned CPU memory, zero-filled, accounted to `cat` until freed.
  static std::shared_ptr<Storage> allocate(size_t bytes, MemCategory cat);
  // Memory owned by `keeper` (a mapping, another buffer); accounted to `cat` while this storage lives.
  static std::shared_ptr<Storage> borrow(void* data, size_t bytes, MemCategory cat, std::shared_ptr<void> keeper);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  MemCategory category() const { return cat_; }
  bool owned() const { return keeper_ == nullptr; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  MemCategory cat_ = MemCategory::workspace;
  std::shared_ptr<void> keeper_;
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype, MemCategory cat);  // zero-filled
  static Tensor zeros(const Shape& shape, DType dtype, MemCategory cat) { return empty(shape, dtype, cat); }
  static Tensor from_storage(std::shared_ptr<Storage> s, size_t byte_offset, const Shape& shape, DType dtype);
  // Copies host data into a new owned f32 / i32 tensor.
  static Tensor from_floats(const std::vector<float>& v, const Shape& shape, MemCategory cat);
  static Tensor from_ints(const std::vector<int32_t>& v, const Shape& shape, MemCategory cat);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  // Negative index counts from the end.
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_bytes(dtype_, size_t(numel())); }
  MemCategory category() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  // Typed pointers check the dtype (f32 -> float, i32 -> int32_t, i8 -> int8_t, bf16/f16 -> uint16_t).
  template <class T> T* data() const;

  // Same storage, new shape with the same element count (one -1 allowed).
  Tensor view(const Shape& shape) const;
  // Rows [start, start+len) of dim 0, same storage.
  Tensor slice(int64_t start, int64_t len) const;
  // A new owned tensor converted to `dtype` (f32 <-> bf16/f16, i32 <-> i8 rounding), tagged `cat`.
  Tensor to(DType dtype, MemCategory cat) const;
  Tensor clone(MemCategory cat) const { return to(dtype_, cat); }
  // Element-wise copy from a tensor of the same numel (any float dtypes, converts).
  void copy_from(const Tensor& src);
  void zero_();
  // Values as f32 on the host (copy), for tests and I/O.
  std::vector<float> to_floats() const;

  // Makes `t` a tensor of `shape` reusing its storage when it is large enough (no allocation after the
  // first step at the largest shape); otherwise allocates. Contents are unspecified after a reshape.
  static void ensure(Tensor& t, const Shape& shape, DType dtype, MemCategory cat);

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
};

template <> float* Tensor::data<float>() const;
template <> int32_t* Tensor::data<int32_t>() const;
template <> int8_t* Tensor::data<int8_t>() const;
template <> uint16_t* Tensor::data<uint16_t>() const;
template <> uint8_t* Tensor::data<uint8_t>() const;

}  // namespace ladder::core
