#include "apps/cpu_peak.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <time.h>

#include "core/cpu/isa_check.h"

namespace ladder::apps {

int f32_flops_per_cycle(bool avx512f, bool avx2_fma, bool avx, const std::string& vendor, int family, int model,
                        std::string& isa, std::string& why) {
  const bool amd = vendor == "AuthenticAMD";
  if (avx512f) {
    isa = "AVX-512F";
    if (amd && family == 0x19) {  // Zen 4 executes 512-bit instructions on its two 256-bit FMA pipes
      why = "8 f32 lanes x 2 (FMA) x 2 pipes: AMD family 19h (Zen 4) splits AVX-512 over 256-bit FMA pipes";
      return 32;
    }
    why = amd ? "16 f32 lanes x 2 (FMA) x 2 pipes: AMD family 1Ah (Zen 5), full-width 512-bit FMA pipes"
              : "16 f32 lanes x 2 (FMA) x 2 pipes: assumes two 512-bit FMA units (some Xeon Silver/Gold parts have one: half)";
    return 64;
  }
  if (avx2_fma) {
    isa = "AVX2+FMA";
    if (amd && family == 0x17 && model < 0x30) {  // Zen 1 / Zen+ split 256-bit FMAs over 128-bit pipes
      why = "4 f32 lanes x 2 (FMA) x 2 pipes: AMD family 17h before Zen 2 has 128-bit FMA pipes";
      return 16;
    }
    why = "8 f32 lanes x 2 (FMA) x 2 pipes (Haswell and later, Zen 2 and later)";
    return 32;
  }
  if (avx) {
    isa = "AVX";
    why = "8 f32 lanes x (1 add + 1 multiply pipe), no FMA";
    return 16;
  }
  isa = "SSE2";
  why = "4 f32 lanes x (1 add + 1 multiply pipe)";
  return 8;
}

namespace {
// This thread's CPU time: the time it was descheduled (other processes on the cores) does not count.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

double measured_core_ghz() {
#if defined(__x86_64__)
  constexpr uint64_t iters = 1u << 20, adds_per_iter = 16;
  double best = 0;
  for (int run = 0; run < 12; ++run) {
    uint64_t x = 0, n = iters;
    const double t0 = thread_seconds();
    // 16 dependent adds per iteration: 16 cycles, with the loop counter on another ALU in parallel.
    asm volatile(
        "1:\n\t"
        "add $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\t"
        "add $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\t"
        "add $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\t"
        "add $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\tadd $1, %[x]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        : [x] "+r"(x), [n] "+r"(n)
        :
        : "cc");
    const double s = thread_seconds() - t0;
    if (s > 0) best = std::max(best, double(iters * adds_per_iter) / s * 1e-9);
  }
  return best;
#else
  return 0;
#endif
}

namespace {

// The first "key : value" of /proc/cpuinfo with this key, or "".
std::string cpuinfo_value(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k == key) return colon + 2 <= line.size() ? line.substr(colon + 2) : "";
  }
  return "";
}

// Distinct (physical id, core id) pairs: physical cores, hyper-threads counted once.
int physical_cores() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, phys = "0";
  std::set<std::pair<std::string, std::string>> cores;
  int processors = 0;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (line.rfind("processor", 0) == 0) ++processors;
    else if (line.rfind("physical id", 0) == 0) phys = value;
    else if (line.rfind("core id", 0) == 0) cores.insert({phys, value});
  }
  if (!cores.empty()) return int(cores.size());
  if (processors > 0) return processors;
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

int to_int(const std::string& s) {
  try {
    return std::stoi(s);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

CpuPeak theoretical_peak(int threads) {
  CpuPeak p;
  const int phys = physical_cores();
  p.cores = std::min(std::max(1, threads), phys);
  const std::string vendor = cpuinfo_value("vendor_id");
  const int family = to_int(cpuinfo_value("cpu family")), model = to_int(cpuinfo_value("model"));
  // The start-up check's table (-1, unknown, off x86 counts as absent).
  const bool avx512f = ladder_isa_supported("AVX512F") == 1;
  const bool avx2_fma = ladder_isa_supported("AVX2") == 1 && ladder_isa_supported("FMA") == 1;
  const bool avx = ladder_isa_supported("AVX") == 1;
  std::string why;
  p.flops_per_cycle = f32_flops_per_cycle(avx512f, avx2_fma, avx, vendor, family, model, p.isa, why);

  const double measured = measured_core_ghz();
  double cpufreq_max = 0;
  {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    long khz = 0;
    if (f >> khz) cpufreq_max = double(khz) * 1e-6;
  }
  const std::string mhz = cpuinfo_value("cpu MHz");
  double cpuinfo_ghz = 0;
  try {
    cpuinfo_ghz = mhz.empty() ? 0.0 : std::stod(mhz) * 1e-3;
  } catch (const std::exception&) {
  }
  // An upper bound: the fastest of what the core was seen to run at and what the system says it can.
  p.ghz = std::max({measured, cpufreq_max, cpuinfo_ghz});

  char clock_src[256];
  std::snprintf(clock_src, sizeof clock_src,
                "clock %.2f GHz = max(timed dependent-add chain %.2f GHz, cpufreq max %s, /proc/cpuinfo cpu MHz %s)", p.ghz,
                measured, cpufreq_max > 0 ? (std::to_string(cpufreq_max).substr(0, 4) + " GHz").c_str() : "absent",
                mhz.empty() ? "absent" : mhz.c_str());
  char buf[768];
  std::snprintf(buf, sizeof buf, "%d of %d physical cores x %.2f GHz x %d f32 FLOP/cycle (%s, cpuid: %s; %s, family %d model %d); %s",
                p.cores, phys, p.ghz, p.flops_per_cycle, why.c_str(), p.isa.c_str(), vendor.empty() ? "?" : vendor.c_str(),
                family, model, clock_src);
  p.derivation = buf;
  return p;
}

}  // namespace ladder::apps
