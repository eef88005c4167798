#include "core/tensor/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LADDER_F16C_PATH 1
#endif

#include <stdexcept>

namespace ladder::core {

namespace {

#if defined(LADDER_F16C_PATH)
// F16C converts 8 lanes at a time, exactly as the scalar functions do (round to nearest even). Compiled for
// F16C whatever the build's baseline; used when the build targets F16C or, in a portable build, when this
// CPU has it. Each returns how many leading elements it converted.
__attribute__((target("avx,f16c"))) size_t f16_to_f32_f16c(const uint16_t* h, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  return i;
}
__attribute__((target("avx,f16c"))) size_t f32_to_f16_f16c(const float* in, uint16_t* h, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  return i;
}
bool use_f16c() {
#if defined(__F16C__)
  return true;
#else
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
#endif
}
#endif

}  // namespace

int dtype_bits(DType t) {
  switch (t) {
    case DType::f32: return 32;
    case DType::bf16: return 16;
    case DType::f16: return 16;
    case DType::i32: return 32;
    case DType::i8: return 8;
    case DType::u4: return 4;
  }
  return 0;
}

size_t dtype_bytes(DType t, size_t numel) { return (numel * size_t(dtype_bits(t)) + 7) / 8; }

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i32: return "i32";
    case DType::i8: return "i8";
    case DType::u4: return "u4";
  }
  return "?";
}

DType parse_dtype(const std::string& s) {
  if (s == "f32" || s == "F32" || s == "float32" || s == "fp32") return DType::f32;
  if (s == "bf16" || s == "BF16" || s == "bfloat16") return DType::bf16;
  if (s == "f16" || s == "F16" || s == "float16" || s == "fp16") return DType::f16;
  if (s == "i32" || s == "I32" || s == "int32") return DType::i32;
  if (s == "i8" || s == "I8" || s == "int8") return DType::i8;
  if (s == "u4" || s == "nf4") return DType::u4;
  throw std::invalid_argument("unknown dtype '" + s + "' (expected f32, bf16, f16, i32, i8 or u4)");
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return uint16_t(sign | 0x7e00);  // NaN
  if (absu >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // overflow to inf (incl. rounding)
  if (absu < 0x38800000u) {                                  // subnormal or zero in f16
    if (absu < 0x33000000u) return sign;                     // rounds to zero
    uint32_t exp = absu >> 23;
    uint32_t mant = (absu & 0x7fffff) | 0x800000;
    // value = mant * 2^(exp-150); the f16 subnormal unit is 2^-24, so bits = mant >> (126 - exp)
    uint32_t s = 126 - exp;  // right shift amount, 1..24
    uint32_t bits = mant >> s;
    uint32_t rem = mant & ((1u << s) - 1);
    uint32_t halfway = 1u << (s - 1);
    if (rem > halfway || (rem == halfway && (bits & 1))) ++bits;
    return uint16_t(sign | bits);
  }
  // normal: rebias exponent, round mantissa to nearest even
  uint32_t r = absu - 0x38000000u;  // exp - 112
  uint32_t bits = r >> 13;
  uint32_t rem = r & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (bits & 1))) ++bits;
  return uint16_t(sign | bits);
}

void convert_to_f32(DType from, const void* in, float* out, size_t n) {
  const auto* h = static_cast<const uint16_t*>(in);
  size_t i = 0;
  switch (from) {
    case DType::f32: std::memcpy(out, in, n * sizeof(float)); return;
    case DType::bf16:
      for (; i < n; ++i) out[i] = bf16_to_f32(h[i]);
      return;
    case DType::f16:
#if defined(LADDER_F16C_PATH)
      if (use_f16c()) i = f16_to_f32_f16c(h, out, n);
#endif
      for (; i < n; ++i) out[i] = f16_to_f32(h[i]);
      return;
    default: throw std::invalid_argument(std::string("convert_to_f32: ") + dtype_name(from) + " is not a float type");
  }
}

void convert_from_f32(DType to, const float* in, void* out, size_t n) {
  auto* h = static_cast<uint16_t*>(out);
  size_t i = 0;
  switch (to) {
    case DType::f32: std::memcpy(out, in, n * sizeof(float)); return;
    case DType::bf16:
      for (; i < n; ++i) h[i] = f32_to_bf16(in[i]);
      return;
    case DType::f16:
#if defined(LADDER_F16C_PATH)
      if (use_f16c()) i = f32_to_f16_f16c(in, h, n);
#endif
      for (; i < n; ++i) h[i] = f32_to_f16(in[i]);
      return;
    default: throw std::invalid_argument(std::string("convert_from_f32: ") + dtype_name(to) + " is not a float type");
  }
}

}  // namespace ladder::core
