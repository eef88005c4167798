#pragma once
// The theoretical f32 peak of the cores a run uses: cores x clock x FLOPs per cycle, the last from the
// widest vector ISA the CPU reports (cpuid) and how many FMA pipes of that width its microarchitecture
// has. `derivation` says where each factor came from, so that a reader can check it.
#include <string>

namespace ladder::apps {

struct CpuPeak {
  int cores = 0;              // physical cores used: min(threads, physical cores)
  double ghz = 0;             // the clock used
  int flops_per_cycle = 0;    // f32, per core
  std::string isa;            // "AVX2+FMA", "AVX-512F", ...
  std::string derivation;     // one line: every factor and its source
  double gflops() const { return cores * ghz * flops_per_cycle; }
};

// FLOPs per cycle per core for f32 from the ISA and the vendor/family (x86 cpuid leaf 1 family, with the
// extended family added). Explains the per-cycle figure in `why` ("8 lanes x 2 (FMA) x 2 pipes").
int f32_flops_per_cycle(bool avx512f, bool avx2_fma, bool avx, const std::string& vendor, int family, int model,
                        std::string& isa, std::string& why);

// The clock a core runs at, measured: a chain of dependent integer adds (one cycle each on every x86-64
// core) timed in the calling thread's CPU time (time descheduled does not count), best of several short
// runs. 0 where not x86-64.
double measured_core_ghz();

// The peak for `threads` threads on this machine (reads /proc/cpuinfo and, where present, cpufreq).
CpuPeak theoretical_peak(int threads);

}  // namespace ladder::apps
