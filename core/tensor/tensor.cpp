#include "core/tensor/tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

namespace ladder::core {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, MemCategory cat) {
  auto s = std::shared_ptr<Storage>(new Storage());
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  s->data_ = std::aligned_alloc(64, rounded);
  if (!s->data_) throw std::bad_alloc();
  std::memset(s->data_, 0, rounded);
  s->bytes_ = bytes;
  s->cat_ = cat;
  MemoryTracker::instance().add(0, cat, bytes);
  MemoryTracker::instance().count_allocation();
  return s;
}

std::shared_ptr<Storage> Storage::borrow(void* data, size_t bytes, MemCategory cat, std::shared_ptr<void> keeper) {
  auto s = std::shared_ptr<Storage>(new Storage());
  s->data_ = data;
  s->bytes_ = bytes;
  s->cat_ = cat;
  s->keeper_ = keeper ? std::move(keeper) : std::make_shared<int>(0);
  MemoryTracker::instance().add(0, cat, bytes);
  return s;
}

Storage::~Storage() {
  MemoryTracker::instance().sub(0, cat_, bytes_);
  if (!keeper_) std::free(data_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, MemCategory cat) {
  for (auto d : shape)
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = Storage::allocate(t.nbytes(), cat);
  return t;
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> s, size_t byte_offset, const Shape& shape, DType dtype) {
  Tensor t;
  t.storage_ = std::move(s);
  t.offset_ = byte_offset;
  t.shape_ = shape;
  t.dtype_ = dtype;
  if (byte_offset + t.nbytes() > t.storage_->bytes())
    throw std::out_of_range("tensor of shape " + shape_str(shape) + " does not fit its storage");
  return t;
}

Tensor Tensor::from_floats(const std::vector<float>& v, const Shape& shape, MemCategory cat) {
  if (int64_t(v.size()) != shape_numel(shape)) throw std::invalid_argument("from_floats: size does not match " + shape_str(shape));
  Tensor t = empty(shape, DType::f32, cat);
  std::memcpy(t.raw(), v.data(), v.size() * 4);
  return t;
}

Tensor Tensor::from_ints(const std::vector<int32_t>& v, const Shape& shape, MemCategory cat) {
  if (int64_t(v.size()) != shape_numel(shape)) throw std::invalid_argument("from_ints: size does not match " + shape_str(shape));
  Tensor t = empty(shape, DType::i32, cat);
  std::memcpy(t.raw(), v.data(), v.size() * 4);
  return t;
}

MemCategory Tensor::category() const { return storage_ ? storage_->category() : MemCategory::workspace; }

static void check_dtype(DType have, DType want, const char* type) {
  if (have != want)
    throw std::logic_error(std::string("tensor of dtype ") + dtype_name(have) + " accessed as " + type);
}
template <> float* Tensor::data<float>() const {
  check_dtype(dtype_, DType::f32, "float");
  return static_cast<float*>(raw());
}
template <> int32_t* Tensor::data<int32_t>() const {
  check_dtype(dtype_, DType::i32, "int32");
  return static_cast<int32_t*>(raw());
}
template <> int8_t* Tensor::data<int8_t>() const {
  check_dtype(dtype_, DType::i8, "int8");
  return static_cast<int8_t*>(raw());
}
template <> uint16_t* Tensor::data<uint16_t>() const {
  if (dtype_ != DType::bf16 && dtype_ != DType::f16) check_dtype(dtype_, DType::bf16, "uint16");
  return static_cast<uint16_t*>(raw());
}
template <> uint8_t* Tensor::data<uint8_t>() const { return static_cast<uint8_t*>(raw()); }

Tensor Tensor::view(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw std::invalid_argument("view: more than one -1 in " + shape_str(shape));
      infer = int(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) s[infer] = known ? numel() / known : 0;
  if (shape_numel(s) != numel())
    throw std::invalid_argument("view: cannot view " + shape_str(shape_) + " as " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(int64_t start, int64_t len) const {
  if (shape_.empty() || start < 0 || len < 0 || start + len > shape_[0])
    throw std::out_of_range("slice [" + std::to_string(start) + ", " + std::to_string(start + len) + ") of " +
                            shape_str(shape_));
  Tensor t = *this;
  int64_t row = numel() / (shape_[0] ? shape_[0] : 1);
  t.offset_ += dtype_bytes(dtype_, size_t(start * row));
  t.shape_[0] = len;
  return t;
}

static float load_as_float(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::i32: return float(static_cast<const int32_t*>(p)[i]);
    case DType::i8: return float(static_cast<const int8_t*>(p)[i]);
    case DType::u4: break;
  }
  throw std::logic_error("u4 tensors need a dequantiser, not a cast");
}

static void store_float(void* p, DType t, size_t i, float v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = v; return;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); return;
    case DType::f16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); return;
    case DType::i32: static_cast<int32_t*>(p)[i] = int32_t(std::lrint(v)); return;
    case DType::i8: static_cast<int8_t*>(p)[i] = int8_t(std::lrint(v)); return;
    case DType::u4: break;
  }
  throw std::logic_error("u4 tensors need a quantiser, not a cast");
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel())
    throw std::invalid_argument("copy_from: " + shape_str(src.shape_) + " into " + shape_str(shape_));
  if (src.dtype_ == dtype_) {
    std::memmove(raw(), src.raw(), nbytes());
    return;
  }
  const size_t n = size_t(numel());
  const void* s = src.raw();
  void* d = raw();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (size_t i = 0; i < n; ++i) store_float(d, dtype_, i, load_as_float(s, src.dtype_, i));
}

Tensor Tensor::to(DType dtype, MemCategory cat) const {
  Tensor t = empty(shape_, dtype, cat);
  t.copy_from(*this);
  return t;
}

void Tensor::zero_() { std::memset(raw(), 0, nbytes()); }

std::vector<float> Tensor::to_floats() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = load_as_float(raw(), dtype_, i);
  return v;
}

void Tensor::ensure(Tensor& t, const Shape& shape, DType dtype, MemCategory cat) {
  size_t need = dtype_bytes(dtype, size_t(shape_numel(shape)));
  if (t.storage_ && t.storage_->owned() && t.storage_->category() == cat && t.storage_->bytes() >= need ) {
    t.offset_ = 0;
    t.shape_ = shape;
    t.dtype_ = dtype;
    return;
  }
  t = empty(shape, dtype, cat);
}

}  // namespace ladder::core
