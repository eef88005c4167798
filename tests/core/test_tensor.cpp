// Tensor shapes, views and slices; the f32 <-> bf16 / f16 conversions against references computed here;
// the memory tracker's per-category accounting; Tensor::ensure's storage reuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/tensor/dtype.h"
#include "core/tensor/memory.h"
#include "core/tensor/tensor.h"

namespace {

using ladder::core::DType;
using ladder::core::MemCategory;
using ladder::core::MemoryTracker;
using ladder::core::Shape;
using ladder::core::Tensor;
namespace core = ladder::core;

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Reference decoding of an IEEE binary16 pattern, computed in double from the definition.
double ref_f16_value(uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp(double(mant), -24);
  else if (exp == 0x1f) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else v = std::ldexp(1.0 + mant / 1024.0, exp - 15);
  return sign ? -v : v;
}
bool f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

// ---------------------------------------------------------------------------------------------------------
// Shapes, views, slices

TEST(Tensor, ShapeNumelAndStr) {
  EXPECT_EQ(core::shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(core::shape_numel({}), 1);
  EXPECT_EQ(core::shape_numel({5, 0}), 0);
  EXPECT_EQ(core::shape_str({2, 3}), "[2, 3]");
  EXPECT_EQ(core::shape_str({}), "[]");
  Tensor t = Tensor::empty({2, 3, 4}, DType::f32, MemCategory::workspace);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  for (float v : t.to_floats()) EXPECT_EQ(v, 0.0f);  // zero-filled
  EXPECT_EQ(Tensor::empty({3, 5}, DType::bf16, MemCategory::workspace).nbytes(), 30u);
  EXPECT_EQ(Tensor::empty({3, 5}, DType::i8, MemCategory::workspace).nbytes(), 15u);
  EXPECT_EQ(core::dtype_bytes(DType::u4, 5), 3u);
  EXPECT_THROW(Tensor::empty({2, -3}, DType::f32, MemCategory::workspace), std::invalid_argument);
}

TEST(Tensor, TypedAccessChecksDtype) {
  Tensor f = Tensor::empty({4}, DType::f32, MemCategory::workspace);
  Tensor i = Tensor::empty({4}, DType::i32, MemCategory::workspace);
  Tensor h = Tensor::empty({4}, DType::f16, MemCategory::workspace);
  EXPECT_NO_THROW(f.data<float>());
  EXPECT_NO_THROW(i.data<int32_t>());
  EXPECT_NO_THROW(h.data<uint16_t>());
  EXPECT_THROW(i.data<float>(), std::logic_error);
  EXPECT_THROW(f.data<int32_t>(), std::logic_error);
  EXPECT_THROW(f.data<uint16_t>(), std::logic_error);
  EXPECT_THROW(h.data<int8_t>(), std::logic_error);
  EXPECT_THROW(Tensor::from_floats({1, 2, 3}, {2, 2}, MemCategory::workspace), std::invalid_argument);
  EXPECT_THROW(Tensor::from_ints({1, 2, 3}, {4}, MemCategory::workspace), std::invalid_argument);
}

TEST(Tensor, ViewInfersMinusOneAndSharesStorage) {
  std::vector<float> v(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k);
  Tensor t = Tensor::from_floats(v, {2, 3, 4}, MemCategory::workspace);
  Tensor a = t.view({-1, 4});
  EXPECT_EQ(a.shape(), (Shape{6, 4}));
  Tensor b = t.view({4, -1});
  EXPECT_EQ(b.shape(), (Shape{4, 6}));
  Tensor c = t.view({2, -1, 3});
  EXPECT_EQ(c.shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(t.view({24}).shape(), (Shape{24}));
  EXPECT_EQ(a.raw(), t.raw());
  EXPECT_EQ(a.storage(), t.storage());
  a.data<float>()[5] = 100.0f;  // writes through to the original
  EXPECT_EQ(t.data<float>()[5], 100.0f);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));  // the original keeps its shape
}

TEST(Tensor, BadViewThrows) {
  Tensor t = Tensor::empty({2, 3, 4}, DType::f32, MemCategory::workspace);
  EXPECT_THROW(t.view({5, 5}), std::invalid_argument);
  EXPECT_THROW(t.view({25}), std::invalid_argument);
  EXPECT_THROW(t.view({5, -1}), std::invalid_argument);  // 24 is not a multiple of 5
  EXPECT_THROW(t.view({-1, -1}), std::invalid_argument);
  try {
    t.view({7, 3});
    FAIL() << "view should throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3, 4]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[7, 3]"), std::string::npos) << e.what();
  }
}

TEST(Tensor, SliceRowsShareStorage) {
  std::vector<float> v(12);
  for (size_t k = 0; k < v.size(); ++k) v[k] = float(k);
  Tensor t = Tensor::from_floats(v, {4, 3}, MemCategory::workspace);
  Tensor s = t.slice(1, 2);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.data<float>(), t.data<float>() + 3);
  EXPECT_EQ(s.to_floats(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  s.data<float>()[0] = -1.0f;
  EXPECT_EQ(t.data<float>()[3], -1.0f);
  EXPECT_EQ(t.slice(4, 0).numel(), 0);  // empty slice at the end is fine
  EXPECT_EQ(t.slice(0, 4).raw(), t.raw());
  // A slice of a slice keeps counting from its own start.
  Tensor ss = s.slice(1, 1);
  EXPECT_EQ(ss.data<float>(), t.data<float>() + 6);
  // 16-bit dtype: offsets in elements of 2 bytes.
  Tensor h = t.to(DType::bf16, MemCategory::workspace);
  Tensor hs = h.slice(2, 2);
  EXPECT_EQ(static_cast<char*>(hs.raw()) - static_cast<char*>(h.raw()), 2 * 3 * 2);
  EXPECT_EQ(hs.to_floats(), (std::vector<float>{6, 7, 8, 9, 10, 11}));
}

TEST(Tensor, SliceOutOfRangeThrows) {
  Tensor t = Tensor::empty({4, 3}, DType::f32, MemCategory::workspace);
  EXPECT_THROW(t.slice(3, 2), std::out_of_range);
  EXPECT_THROW(t.slice(5, 0), std::out_of_range);
  EXPECT_THROW(t.slice(-1, 1), std::out_of_range);
  EXPECT_THROW(t.slice(0, -1), std::out_of_range);
  EXPECT_THROW(t.slice(0, 5), std::out_of_range);
  Tensor s = t.slice(1, 2);
  EXPECT_THROW(s.slice(1, 2), std::out_of_range);  // bounded by the slice, not the storage
}

TEST(Tensor, FromStorageChecksFit) {
  auto st = core::Storage::allocate(64, MemCategory::workspace);
  EXPECT_NO_THROW(Tensor::from_storage(st, 0, {16}, DType::f32));
  EXPECT_NO_THROW(Tensor::from_storage(st, 32, {8}, DType::f32));
  EXPECT_THROW(Tensor::from_storage(st, 4, {16}, DType::f32), std::out_of_range);
  EXPECT_THROW(Tensor::from_storage(st, 0, {17}, DType::f32), std::out_of_range);
}

TEST(Tensor, ToAndCopyFromConvert) {
  std::vector<float> v = {1.0f, -2.5f, 3.140625f, 65504.0f, 1e-3f, -0.0f};
  Tensor t = Tensor::from_floats(v, {2, 3}, MemCategory::workspace);
  Tensor b = t.to(DType::bf16, MemCategory::activations);
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_EQ(b.category(), MemCategory::activations);
  EXPECT_EQ(b.shape(), (Shape{2, 3}));
  for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(b.data<uint16_t>()[k], core::f32_to_bf16(v[k])) << k;
  Tensor h = t.to(DType::f16, MemCategory::workspace);
  for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(h.data<uint16_t>()[k], core::f32_to_f16(v[k])) << k;
  // f16 -> f32 through copy_from
  Tensor back = Tensor::empty({6}, DType::f32, MemCategory::workspace);
  back.copy_from(h);
  for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(back.data<float>()[k], core::f16_to_f32(core::f32_to_f16(v[k])));
  // f32 -> i32 rounds to nearest
  Tensor r = Tensor::from_floats({1.4f, 1.6f, -2.6f}, {3}, MemCategory::workspace).to(DType::i32, MemCategory::workspace);
  EXPECT_EQ(r.data<int32_t>()[0], 1);
  EXPECT_EQ(r.data<int32_t>()[1], 2);
  EXPECT_EQ(r.data<int32_t>()[2], -3);
  Tensor c = t.clone(MemCategory::workspace);
  EXPECT_NE(c.raw(), t.raw());
  EXPECT_EQ(c.to_floats(), t.to_floats());
  EXPECT_THROW(back.copy_from(t.view({6}).slice(0, 5)), std::invalid_argument);
  c.zero_();
  for (float x : c.to_floats()) EXPECT_EQ(x, 0.0f);
}

TEST(Dtype, ParseAndName) {
  EXPECT_EQ(core::parse_dtype("float16"), DType::f16);
  EXPECT_EQ(core::parse_dtype("bf16"), DType::bf16);
  EXPECT_EQ(core::parse_dtype("F32"), DType::f32);
  EXPECT_EQ(core::parse_dtype("int8"), DType::i8);
  EXPECT_STREQ(core::dtype_name(DType::bf16), "bf16");
  try {
    core::parse_dtype("f64");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'f64'"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------------------
// f16

TEST(Dtype, F16DecodeMatchesReferenceForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = core::f16_to_f32(uint16_t(h));
    const double ref = ref_f16_value(uint16_t(h));
    if (f16_is_nan(uint16_t(h))) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), bool(h & 0x8000)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(double(got), ref) << "pattern 0x" << std::hex << h;
    ASSERT_EQ(std::signbit(got), bool(h & 0x8000)) << std::hex << h;  // -0 stays -0
  }
}

TEST(Dtype, F16RoundTripIsIdentityForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t back = core::f32_to_f16(core::f16_to_f32(uint16_t(h)));
    if (f16_is_nan(uint16_t(h))) {
      // NaN payloads may be canonicalised, but NaN (and its sign) must survive.
      ASSERT_TRUE(f16_is_nan(back)) << std::hex << h << " -> " << back;
      ASSERT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;
      continue;
    }
    ASSERT_EQ(back, uint16_t(h)) << "pattern 0x" << std::hex << h;
  }
}

// Every midpoint between adjacent finite f16 values (normals, subnormals, the subnormal/normal boundary)
// must round to the neighbour with an even mantissa; one f32 ulp either side rounds to the nearer one.
TEST(Dtype, F16RoundsToNearestTiesToEvenEverywhere) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const double lo = ref_f16_value(uint16_t(h)), hi = ref_f16_value(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);
    ASSERT_EQ(double(mid), (lo + hi) / 2) << "midpoint not exact in f32 at " << h;
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(core::f32_to_f16(mid), even) << "tie at 0x" << std::hex << h;
    ASSERT_EQ(core::f32_to_f16(-mid), uint16_t(even | 0x8000)) << "negative tie at 0x" << std::hex << h;
    ASSERT_EQ(core::f32_to_f16(std::nextafter(mid, 0.0f)), uint16_t(h)) << "below tie at 0x" << std::hex << h;
    ASSERT_EQ(core::f32_to_f16(std::nextafter(mid, 1e9f)), uint16_t(h + 1)) << "above tie at 0x" << std::hex << h;
  }
}

TEST(Dtype, F16HandPickedRoundingSubnormalsAndOverflow) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0 = 0x3c00).
  EXPECT_EQ(core::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 0x3c01 and 0x3c02: ties to even (0x3c02).
  EXPECT_EQ(core::f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(core::f32_to_f16(2049.0f), 0x6800);  // 2048 (even) not 2050
  EXPECT_EQ(core::f32_to_f16(2051.0f), 0x6802);  // 2052 (even) not 2050
  EXPECT_EQ(core::f32_to_f16(0.1f), 0x2e66);
  EXPECT_EQ(core::f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(core::f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(core::f32_to_f16(-0.0f), 0x8000);
  // Subnormals: unit 2^-24.
  EXPECT_EQ(core::f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(core::f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 -> 0
  EXPECT_EQ(core::f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(core::f32_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002);  // tie between 1 and 2 -> 2
  EXPECT_EQ(core::f32_to_f16(std::ldexp(1023.0f, -24)), 0x03ff);  // largest subnormal
  EXPECT_EQ(core::f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(core::f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(core::f32_to_f16(-std::ldexp(1.0f, -30)), 0x8000);   // underflow keeps the sign
  EXPECT_EQ(core::f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(core::f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(core::f16_to_f32(0x8200), -std::ldexp(1.0f, -15));
  // Overflow: 65504 is the largest finite; 65520 is the tie with "65536" and goes to inf (even).
  EXPECT_EQ(core::f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(core::f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(core::f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(core::f32_to_f16(-65520.0f), 0xfc00);
  EXPECT_EQ(core::f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(core::f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(core::f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(core::f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(f16_is_nan(core::f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(f16_is_nan(core::f32_to_f16(float_of(0x7f800001u))));  // payload only in the low bits
  EXPECT_TRUE(f16_is_nan(core::f32_to_f16(float_of(0xff800001u))));
  EXPECT_TRUE(std::isinf(core::f16_to_f32(0x7c00)));
}

// Random f32 values against a brute-force reference: the nearest f16 (ties to even), by binary search.
TEST(Dtype, F16RandomValuesMatchNearestReference) {
  std::vector<double> pos(0x7c00);
  for (uint32_t h = 0; h < 0x7c00; ++h) pos[h] = ref_f16_value(uint16_t(h));
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  int checked = 0;
  for (int k = 0; k < 200000; ++k) {
    uint32_t u = any(rng);
    // bias towards the f16 range: exponents 2^-26 .. 2^17
    u = (u & 0x807fffffu) | (uint32_t(101 + (u >> 23) % 44) << 23);
    const float f = float_of(u);
    const double a = std::fabs(double(f));
    uint16_t expect;
    if (a >= 65520.0) {
      expect = 0x7c00;
    } else {
      size_t hi = size_t(std::lower_bound(pos.begin(), pos.end(), a) - pos.begin());
      if (hi == 0) expect = 0;
      else if (hi == pos.size()) expect = 0x7bff;  // (65504, 65520)
      else {
        const double dlo = a - pos[hi - 1], dhi = pos[hi] - a;
        if (dlo < dhi) expect = uint16_t(hi - 1);
        else if (dhi < dlo) expect = uint16_t(hi);
        else expect = (hi & 1) ? uint16_t(hi - 1) : uint16_t(hi);
      }
    }
    if (std::signbit(f)) expect |= 0x8000;
    ASSERT_EQ(core::f32_to_f16(f), expect) << "f = " << f << " bits 0x" << std::hex << u;
    ++checked;
  }
  EXPECT_EQ(checked, 200000);
}

// ---------------------------------------------------------------------------------------------------------
// bf16

TEST(Dtype, Bf16RoundTripIsIdentityForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = core::bf16_to_f32(uint16_t(h));
    ASSERT_EQ(bits_of(f), h << 16) << std::hex << h;
    const uint16_t back = core::f32_to_bf16(f);
    if (bf16_is_nan(uint16_t(h))) {
      ASSERT_TRUE(bf16_is_nan(back)) << std::hex << h << " -> " << back;
      ASSERT_EQ(back & 0x8000, h & 0x8000);
      continue;
    }
    ASSERT_EQ(back, uint16_t(h)) << "pattern 0x" << std::hex << h;
  }
}

TEST(Dtype, Bf16RoundsToNearestTiesToEvenEverywhere) {
  // Midpoint between bf16 patterns h and h+1 is the f32 with bits (h << 16) | 0x8000 (for h below inf).
  for (uint32_t h = 0; h < 0x7f80; ++h) {
    const uint32_t mid = (h << 16) | 0x8000u;
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(core::f32_to_bf16(float_of(mid)), even) << std::hex << h;
    ASSERT_EQ(core::f32_to_bf16(float_of(mid | 0x80000000u)), uint16_t(even | 0x8000)) << std::hex << h;
    ASSERT_EQ(core::f32_to_bf16(float_of(mid - 1)), uint16_t(h)) << std::hex << h;
    ASSERT_EQ(core::f32_to_bf16(float_of(mid + 1)), uint16_t(h + 1)) << std::hex << h;
  }
  // Against a double-precision reference for random floats.
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint32_t> any;
  for (int k = 0; k < 100000; ++k) {
    uint32_t u = any(rng);
    if ((u & 0x7f800000u) == 0x7f800000u) continue;  // inf/NaN covered elsewhere
    const double x = std::fabs(double(float_of(u)));
    const uint32_t lo = (u & 0x7fffffffu) >> 16;
    const double vlo = double(float_of(lo << 16));
    const double vhi = lo == 0x7f7f ? std::ldexp(1.0, 128) : double(float_of((lo + 1) << 16));
    uint32_t expect = (x - vlo < vhi - x) ? lo : (vhi - x < x - vlo) ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
    expect |= (u >> 16) & 0x8000u;
    ASSERT_EQ(core::f32_to_bf16(float_of(u)), uint16_t(expect)) << std::hex << u;
  }
}

TEST(Dtype, Bf16HandPickedValues) {
  EXPECT_EQ(core::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(core::f32_to_bf16(float_of(0x3f808000u)), 0x3f80);  // tie, 0x3f80 even
  EXPECT_EQ(core::f32_to_bf16(float_of(0x3f818000u)), 0x3f82);  // tie, 0x3f82 even
  EXPECT_EQ(core::f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(core::f32_to_bf16(float_of(0x00018000u)), 0x0002);  // subnormal tie -> even
  EXPECT_EQ(core::f32_to_bf16(float_of(0x00008000u)), 0x0000);
  EXPECT_EQ(core::f32_to_bf16(float_of(0x00008001u)), 0x0001);
  // Overflow: the largest finite bf16 is 0x7f7f; the tie above it rounds to inf.
  EXPECT_EQ(core::f32_to_bf16(float_of(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(core::f32_to_bf16(float_of(0x7f7f8000u)), 0x7f80);
  EXPECT_EQ(core::f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(core::f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // NaN whose payload sits only in the low 16 bits must stay NaN, not become inf.
  EXPECT_TRUE(bf16_is_nan(core::f32_to_bf16(float_of(0x7f800001u))));
  EXPECT_TRUE(bf16_is_nan(core::f32_to_bf16(float_of(0xffffffffu))));
  EXPECT_TRUE(bf16_is_nan(core::f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
}

// ---------------------------------------------------------------------------------------------------------
// Memory accounting

TEST(MemoryTracker, CurrentAndPeakFollowAllocationsPerCategory) {
  auto& mt = MemoryTracker::instance();
  const MemCategory cat = MemCategory::communication, other = MemCategory::optimizer_state;
  const size_t cur0 = mt.current(0, cat), other0 = mt.current(0, other), total0 = mt.current_total(0);
  const size_t allocs0 = mt.allocations();
  {
    Tensor a = Tensor::empty({1000}, DType::f32, cat);  // 4000 bytes
    EXPECT_EQ(mt.current(0, cat), cur0 + 4000);
    EXPECT_EQ(mt.current(0, other), other0);
    EXPECT_EQ(mt.current_total(0), total0 + 4000);
    EXPECT_GE(mt.peak(0, cat), cur0 + 4000);
    EXPECT_EQ(mt.allocations(), allocs0 + 1);
    {
      Tensor b = Tensor::empty({500}, DType::bf16, cat);  // 1000 bytes
      EXPECT_EQ(mt.current(0, cat), cur0 + 5000);
      Tensor view = b.view({-1});  // views do not allocate or account
      EXPECT_EQ(mt.current(0, cat), cur0 + 5000);
      EXPECT_EQ(mt.allocations(), allocs0 + 2);
    }
    EXPECT_EQ(mt.current(0, cat), cur0 + 4000);
    EXPECT_GE(mt.peak(0, cat), cur0 + 5000);
  }
  EXPECT_EQ(mt.current(0, cat), cur0);
  EXPECT_EQ(mt.current_total(0), total0);
  EXPECT_GE(mt.peak(0, cat), cur0 + 5000);
  EXPECT_GE(mt.peak_total(0), total0 + 5000);

  // reset_peaks brings the peak down to the current value; a new allocation raises it again.
  mt.reset_peaks();
  EXPECT_EQ(mt.peak(0, cat), cur0);
  EXPECT_EQ(mt.peak_total(0), mt.current_total(0));
  {
    Tensor c = Tensor::empty({64}, DType::i32, cat);
    EXPECT_EQ(mt.peak(0, cat), cur0 + 256);
  }
  EXPECT_EQ(mt.peak(0, cat), cur0 + 256);
  EXPECT_EQ(mt.current(0, cat), cur0);

  // The rows the report prints carry the same numbers.
  bool found = false;
  for (const auto& r : mt.rows())
    if (r.device == "cpu" && r.category == cat) {
      found = true;
      EXPECT_EQ(r.current, cur0);
      EXPECT_EQ(r.peak, cur0 + 256);
    }
  EXPECT_TRUE(found);
  EXPECT_NE(core::memory_table().find("communication"), std::string::npos);
}

TEST(MemoryTracker, BorrowedStorageIsAccountedButNotCountedAsAllocation) {
  auto& mt = MemoryTracker::instance();
  const MemCategory cat = MemCategory::communication;
  const size_t cur0 = mt.current(0, cat), allocs0 = mt.allocations();
  auto keeper = std::make_shared<std::vector<float>>(100);
  {
    auto s = core::Storage::borrow(keeper->data(), 400, cat, keeper);
    EXPECT_FALSE(s->owned());
    EXPECT_EQ(mt.current(0, cat), cur0 + 400);
    EXPECT_EQ(mt.allocations(), allocs0);
  }
  EXPECT_EQ(mt.current(0, cat), cur0);
}

TEST(MemoryTracker, FormatBytes) {
  EXPECT_EQ(core::format_bytes(512), "512 B");
  EXPECT_EQ(core::format_bytes(2048), "2.0 KiB");
  EXPECT_EQ(core::format_bytes(size_t(3) << 20), "3.0 MiB");
  EXPECT_GT(core::peak_rss_bytes(), 0u);
}

TEST(Tensor, EnsureReusesStorageWhenLargeEnough) {
  auto& mt = MemoryTracker::instance();
  Tensor t;
  size_t n0 = mt.allocations();
  Tensor::ensure(t, {8, 16}, DType::f32, MemCategory::workspace);  // first: allocates 512 bytes
  EXPECT_EQ(mt.allocations(), n0 + 1);
  EXPECT_EQ(t.shape(), (Shape{8, 16}));
  const void* storage = t.storage().get();
  const size_t n1 = mt.allocations();

  Tensor::ensure(t, {4, 16}, DType::f32, MemCategory::workspace);  // smaller: reuse
  EXPECT_EQ(mt.allocations(), n1);
  EXPECT_EQ(t.storage().get(), storage);
  EXPECT_EQ(t.shape(), (Shape{4, 16}));
  Tensor::ensure(t, {8, 16}, DType::bf16, MemCategory::workspace);  // other dtype, fits: reuse
  EXPECT_EQ(mt.allocations(), n1);
  EXPECT_EQ(t.dtype(), DType::bf16);
  Tensor::ensure(t, {128}, DType::f32, MemCategory::workspace);  // exactly the same bytes: reuse
  EXPECT_EQ(mt.allocations(), n1);
  EXPECT_EQ(t.storage().get(), storage);
  EXPECT_EQ(t.raw(), t.storage()->data());

  // From a slice (non-zero offset) the whole storage is reused from its start.
  t = t.slice(64, 64);
  Tensor::ensure(t, {100}, DType::f32, MemCategory::workspace);
  EXPECT_EQ(mt.allocations(), n1);
  EXPECT_EQ(t.raw(), t.storage()->data());

  Tensor::ensure(t, {129}, DType::f32, MemCategory::workspace);  // larger: allocates
  EXPECT_EQ(mt.allocations(), n1 + 1);
  EXPECT_NE(t.storage().get(), storage);
  EXPECT_EQ(t.nbytes(), 516u);

  const size_t n2 = mt.allocations();
  Tensor::ensure(t, {10}, DType::f32, MemCategory::activations);  // other category: allocates
  EXPECT_EQ(mt.allocations(), n2 + 1);
  EXPECT_EQ(t.category(), MemCategory::activations);

  // Borrowed storage is never reused (it is not ours to write).
  auto keeper = std::make_shared<std::vector<float>>(64);
  t = Tensor::from_storage(core::Storage::borrow(keeper->data(), 256, MemCategory::workspace, keeper), 0, {64}, DType::f32);
  const size_t n3 = mt.allocations();
  Tensor::ensure(t, {8}, DType::f32, MemCategory::workspace);
  EXPECT_EQ(mt.allocations(), n3 + 1);
  EXPECT_TRUE(t.storage()->owned());
}

}  // namespace

// The bulk conversions (F16C when built for it) give the scalar functions' bits: every f16 pattern decodes
// alike, and f32 values across the whole range (normal, subnormal, overflow, ties) round alike, at every
// offset of a vector lane. Non-float types are refused.
TEST(Dtype, BulkConversionsMatchTheScalarOnes) {
  std::vector<uint16_t> all(65536);
  for (size_t h = 0; h < all.size(); ++h) all[h] = uint16_t(h);
  std::vector<float> dec(all.size());
  core::convert_to_f32(DType::f16, all.data(), dec.data(), all.size());
  for (size_t h = 0; h < all.size(); ++h) {
    if (f16_is_nan(uint16_t(h))) {
      EXPECT_TRUE(std::isnan(dec[h])) << h;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(dec[h]), std::bit_cast<uint32_t>(core::f16_to_f32(uint16_t(h)))) << h;
    }
  }
  std::vector<float> x;
  for (uint32_t u = 0x00000001u; u < 0x7f800000u; u += 0x000f1235u) x.push_back(std::bit_cast<float>(u));
  for (float v : {65504.0f, 65519.0f, 65520.0f, 1e9f, 6.1035156e-05f, 2.9802322e-08f, 1.0009765625f, 1.00048828125f})
    x.push_back(v);
  const size_t n = x.size();
  for (size_t i = 0; i < n; ++i) x.push_back(-x[i]);
  for (size_t start : {0, 1, 3}) {  // unaligned starts and a scalar tail
    std::vector<uint16_t> h(x.size() - start), b(x.size() - start);
    core::convert_from_f32(DType::f16, x.data() + start, h.data(), h.size());
    core::convert_from_f32(DType::bf16, x.data() + start, b.data(), b.size());
    for (size_t i = 0; i < h.size(); ++i) {
      ASSERT_EQ(h[i], core::f32_to_f16(x[start + i])) << x[start + i];
      ASSERT_EQ(b[i], core::f32_to_bf16(x[start + i])) << x[start + i];
    }
    std::vector<float> back(b.size());
    core::convert_to_f32(DType::bf16, b.data(), back.data(), b.size());
    for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(back[i], core::bf16_to_f32(b[i]));
  }
  float f = 0;
  int32_t i32 = 0;
  EXPECT_THROW(core::convert_to_f32(DType::i32, &i32, &f, 1), std::invalid_argument);
  EXPECT_THROW(core::convert_from_f32(DType::i8, &f, &i32, 1), std::invalid_argument);
}
