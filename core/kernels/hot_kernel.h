#pragma once
// LADDER_HOT_KERNEL marks a kernel entry point worth wider vectors. In the portable build
// (-DLADDER_ARCH=portable: an x86-64-v2 baseline) GCC compiles it twice, for the baseline and for
// x86-64-v3 (AVX2, FMA, F16C), and the loader picks the clone this CPU runs (an ifunc). `flatten` inlines
// the kernel's helpers into each clone, so they get the clone's instruction set too; OpenMP bodies
// outlined from a clone are cloned with it. In every other build the whole program already targets one
// CPU and the macro is empty; so it is with clang, with which the clones have not been tried.
#if defined(LADDER_HOT_KERNEL_CLONES) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LADDER_HOT_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#else
#define LADDER_HOT_KERNEL
#endif
