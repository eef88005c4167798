#include "core/cpu/isa_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu/isa_requirements.h"  // generated: LADDER_ISA_REQUIRED, LADDER_ISA_BUILD_FLAGS

#if defined(__x86_64__) || defined(__i386__)
// __builtin_cpu_supports takes string literals only, hence one small function per extension.
#define LADDER_ISA_ENTRY(upper, lower) \
  static int has_##upper(void) { return __builtin_cpu_supports(lower); }
#define LADDER_ISA_LIST(X)                                                                             \
  X(SSE3, "sse3") X(SSSE3, "ssse3") X(SSE4_1, "sse4.1") X(SSE4_2, "sse4.2") X(POPCNT, "popcnt")        \
  X(AVX, "avx") X(AVX2, "avx2") X(FMA, "fma") X(F16C, "f16c") X(BMI, "bmi") X(BMI2, "bmi2")           \
  X(LZCNT, "lzcnt") X(MOVBE, "movbe") X(AES, "aes") X(PCLMUL, "pclmul") X(VPCLMULQDQ, "vpclmulqdq")    \
  X(VAES, "vaes") X(SHA, "sha") X(ADX, "adx") X(RDRND, "rdrnd") X(RDSEED, "rdseed") X(GFNI, "gfni")    \
  X(AVXVNNI, "avxvnni") X(SSE4A, "sse4a") X(FMA4, "fma4") X(XOP, "xop") X(AVX512F, "avx512f") X(AVX512VL, "avx512vl")               \
  X(AVX512BW, "avx512bw") X(AVX512DQ, "avx512dq") X(AVX512CD, "avx512cd") X(AVX512VNNI, "avx512vnni")  \
  X(AVX512BF16, "avx512bf16") X(AVX512FP16, "avx512fp16") X(AVX512IFMA, "avx512ifma")                  \
  X(AVX512VBMI, "avx512vbmi") X(AVX512VBMI2, "avx512vbmi2") X(AVX512BITALG, "avx512bitalg")            \
  X(AVX512VPOPCNTDQ, "avx512vpopcntdq")
LADDER_ISA_LIST(LADDER_ISA_ENTRY)
#define LADDER_ISA_ROW(upper, lower) {#upper, has_##upper},
static const struct {
  const char* name;
  int (*supported)(void);
} kIsa[] = {LADDER_ISA_LIST(LADDER_ISA_ROW)};
#endif

const char* ladder_isa_required(void) { return LADDER_ISA_REQUIRED; }
const char* ladder_isa_build_flags(void) { return LADDER_ISA_BUILD_FLAGS; }

int ladder_isa_supported(const char* name) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  for (size_t i = 0; i < sizeof kIsa / sizeof kIsa[0]; i++)
    if (strcmp(kIsa[i].name, name) == 0) return kIsa[i].supported() != 0;
#else
  (void)name;
#endif
  return -1;
}

int ladder_isa_missing(const char* required, char* missing, size_t capacity) {
  int count = 0;
  size_t used = 0;
  if (capacity > 0) missing[0] = '\0';
  const char* p = required;
  while (*p) {
    while (*p == ' ') p++;
    const char* end = p;
    while (*end && *end != ' ') end++;
    if (end == p) break;
    char name[32];
    size_t len = (size_t)(end - p) < sizeof name - 1 ? (size_t)(end - p) : sizeof name - 1;
    memcpy(name, p, len);
    name[len] = '\0';
    if (ladder_isa_supported(name) != 1) {
      count++;
      int n = snprintf(missing + used, capacity > used ? capacity - used : 0, "%s%s", used ? " " : "", name);
      if (n > 0) used += (size_t)n < capacity - used ? (size_t)n : capacity - used;
    }
    p = end;
  }
  return count;
}

// This CPU's name from /proc/cpuinfo, for the message.
static void cpu_model(char* out, size_t capacity) {
  snprintf(out, capacity, "this CPU");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char* colon = strchr(line, ':');
    if (!colon) break;
    colon++;
    while (*colon == ' ' || *colon == '\t') colon++;
    snprintf(out, capacity, "this CPU (%.*s)", (int)strcspn(colon, "\n"), colon);
    break;
  }
  fclose(f);
}

void ladder_isa_enforce(const char* required, const char* build_flags) {
  char missing[512];
  if (ladder_isa_missing(required, missing, sizeof missing) == 0) return;
  char model[200];
  cpu_model(model, sizeof model);
  fprintf(stderr,
          "ladder: this binary was built with %s and needs %s; %s lacks %s.\n"
          "ladder: rebuild on this node, or build once with -DLADDER_ARCH=portable for every x86-64 node "
          "(slurm/README.md).\n",
          build_flags, required, model, missing);
  _exit(EXIT_FAILURE);
}

// Priority 101: before every C++ static constructor of the binary, which may already use the extensions.
__attribute__((constructor(101))) static void ladder_isa_check_at_startup(void) {
  ladder_isa_enforce(LADDER_ISA_REQUIRED, LADDER_ISA_BUILD_FLAGS);
}
