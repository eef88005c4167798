#pragma once
// The start-up check every ladder binary runs before any other code: the instruction-set extensions this
// build's flags (cmake/LadderArch.cmake) let the compiler use, against what this CPU and OS support. A
// binary built for a newer CPU than the node it lands on stops with a message naming the missing
// extensions instead of dying with SIGILL mid-run. Plain C, compiled without -march, so that the check
// itself runs everywhere.
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// The extensions this build needs, space-separated upper-case names as the compiler's macros spell them
// ("AVX2 FMA F16C ..."); empty for a baseline build.
const char* ladder_isa_required(void);
// The -march flags the build used ("-march=native", "-march=x86-64-v2 -mtune=generic", ...).
const char* ladder_isa_build_flags(void);
// Writes into `missing` (space-separated, NUL-terminated, truncated to `capacity`) the names from the
// space-separated list `required` that this CPU lacks; returns how many. A name ladder does not know is
// reported as missing: better a clear stop than a SIGILL.
int ladder_isa_missing(const char* required, char* missing, size_t capacity);
// Prints which of `required` this CPU lacks, with `build_flags` and the CPU's name, and exits with
// status 1; returns when nothing is missing. Every binary calls it before main with its own build's values.
void ladder_isa_enforce(const char* required, const char* build_flags);
// Whether this CPU supports one extension by its upper-case name (-1 for a name ladder does not know).
int ladder_isa_supported(const char* name);

#ifdef __cplusplus
}
#endif
