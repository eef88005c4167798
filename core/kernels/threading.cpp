#include "core/kernels/threading.h"

#include <omp.h>

#include <string>

extern "C" {
void openblas_set_num_threads(int);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace ladder::core {

void set_num_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

const char* blas_config() {
  static std::string s = std::string(openblas_get_config()) + " core=" + openblas_get_corename();
  return s.c_str();
}

}  // namespace ladder::core
