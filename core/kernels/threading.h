#pragma once
// One knob for the CPU thread count: OpenMP (our kernels) and OpenBLAS (GEMMs) use the same number.
namespace ladder::core {

// n <= 0 keeps the default (OMP_NUM_THREADS, else all cores).
void set_num_threads(int n);
int num_threads();
// The BLAS library's own description (e.g. "OpenBLAS 0.3.21 ... SkylakeX ... OpenMP"), for reports.
const char* blas_config();

}  // namespace ladder::core
