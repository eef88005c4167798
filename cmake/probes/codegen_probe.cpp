// Known-bad code generation patterns, run at configure time with the flags the build will use (see
// cmake/LadderArch.cmake) and again as a unit test (tests/core/test_codegen_patterns.cpp).
//
// GCC 12.2 with AVX-512 enabled (-march=native on an AVX-512 CPU, -mavx512f, -march=x86-64-v4) stores a
// constant vector whose leading lanes repeat one value and whose trailing lanes are zero as a broadcast of
// the leading value: {1, 1, 1, 1, 1, 1, 0, 0} becomes eight ones. Each pattern below is one shape of that
// bug (float, int32, int64, double, 16 lanes); every function is kept out of line and out of IPA so the
// constants are materialised by the code generator, not folded into the check.
//
// Exit status: 0 when every pattern is right, otherwise the number of wrong patterns (each printed).
// tests/core/test_codegen_patterns.cpp includes this file with LADDER_CODEGEN_PROBE_NO_MAIN.
#include <cstdint>
#include <cstdio>
#include <vector>

#define LADDER_PROBE_OPAQUE __attribute__((noinline, noipa))

namespace {

LADDER_PROBE_OPAQUE void fill_array8(float* out) {
  float m[8] = {1, 1, 1, 1, 1, 1, 0, 0};
  for (int i = 0; i < 8; i++) out[i] = m[i];
}
LADDER_PROBE_OPAQUE std::vector<float> mask8() { return {1, 1, 1, 1, 1, 1, 0, 0}; }
LADDER_PROBE_OPAQUE std::vector<float> half_mask8() { return {1, 1, 1, 1, 0, 0, 0, 0}; }
LADDER_PROBE_OPAQUE std::vector<int32_t> int_mask8() { return {1, 1, 1, 1, 1, 1, 0, 0}; }
LADDER_PROBE_OPAQUE std::vector<float> mask16() { return {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0}; }
LADDER_PROBE_OPAQUE std::vector<double> mask4d() { return {1, 1, 1, 0}; }
LADDER_PROBE_OPAQUE std::vector<int64_t> ids4() { return {5, 5, 5, 0}; }

// Lane i of a pattern is `value` below `lead`, 0 from there on. The expected lanes are computed from values
// read through volatile, never from a constant initialiser that the same bug could break.
template <class T>
int check(const char* name, const T* got, int n, int lead, double value) {
  volatile int lead_v = lead;
  volatile double value_v = value;
  for (int i = 0; i < n; i++) {
    const T want = i < lead_v ? T(value_v) : T(0);
    if (got[i] != want) {
      std::printf("miscompiled: %s lane %d is %g, expected %g\n", name, i, double(got[i]), double(want));
      return 1;
    }
  }
  return 0;
}

}  // namespace


// The number of wrong patterns, each printed.
inline int run_codegen_probe() {
  int bad = 0;
  float a[8];
  fill_array8(a);
  bad += check("float[8] = {1 x6, 0 x2}", a, 8, 6, 1);
  bad += check("vector<float>{1 x6, 0 x2}", mask8().data(), 8, 6, 1);
  bad += check("vector<float>{1 x4, 0 x4}", half_mask8().data(), 8, 4, 1);
  bad += check("vector<int32_t>{1 x6, 0 x2}", int_mask8().data(), 8, 6, 1);
  bad += check("vector<float>{2 x12, 0 x4}", mask16().data(), 16, 12, 2);
  bad += check("vector<double>{1 x3, 0}", mask4d().data(), 4, 3, 1);
  bad += check("vector<int64_t>{5 x3, 0}", ids4().data(), 4, 3, 5);
  return bad;
}

#ifndef LADDER_CODEGEN_PROBE_NO_MAIN
int main() {
  const int bad = run_codegen_probe();
  if (bad == 0) std::printf("all code generation patterns right\n");
  return bad;
}
#endif
