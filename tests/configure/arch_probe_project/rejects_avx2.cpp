// Stands in for a compiler that miscompiles whenever AVX2 is enabled.
#include <cstdio>
int main() {
#if defined(__AVX2__)
  std::printf("miscompiled: pretend AVX2 codegen is broken\n");
  return 1;
#else
  return 0;
#endif
}
