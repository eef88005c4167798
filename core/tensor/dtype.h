#pragma once
// Element types a ladder tensor can hold, and the conversions between the 16-bit floats and f32.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace ladder::core {

// u4 is packed 4-bit (two values per byte, low nibble first), reserved for NF4 backbones.
enum class DType : uint8_t { f32, bf16, f16, i32, i8, u4 };

// Bits per element (u4 is 4); use dtype_bytes for whole-tensor sizes.
int dtype_bits(DType t);
size_t dtype_bytes(DType t, size_t numel);
const char* dtype_name(DType t);
// Parses "f32"/"float32"/"F32", "bf16", "f16"/"float16", "i32", "i8", "u4"; throws naming the string.
DType parse_dtype(const std::string& s);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even, NaN kept quiet.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// n values of a float type (f32, f16 or bf16) to f32 and back, rounding to nearest even: the same bits as
// the scalar functions above (NaN payloads aside), with F16C where the build targets it. Other types throw.
void convert_to_f32(DType from, const void* in, float* out, size_t n);
void convert_from_f32(DType to, const float* in, void* out, size_t n);

}  // namespace ladder::core
