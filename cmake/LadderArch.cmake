# Which CPU instruction set the C++ code targets, chosen so that the build is correct on the CPU it runs on.
#
# LADDER_ARCH (cache):
#   native    this machine's CPU (-march=native), the fastest for a build that runs where it was built;
#   portable  the x86-64-v2 baseline every x86-64 server since 2009 runs, with the hot kernels also compiled
#             for x86-64-v3 (AVX2, FMA, F16C) and picked at load time (core/kernels/hot_kernel.h): one binary
#             for every node of a heterogeneous cluster;
#   <value>   any -march value (x86-64-v3, znver3, sapphirerapids, ...).
#
# Each candidate flag set is first compiled and run on cmake/probes/codegen_probe.cpp (code generation
# patterns known to be miscompiled by some compilers, e.g. GCC 12.2's constant-vector stores under AVX-512)
# with the build type's optimisation flags. A set that fails falls back to the next safe one, and CMake's
# output says which and why. LADDER_ARCH_PROBE=OFF skips the probe (a cross build that cannot run here).
#
# Results: LADDER_ARCH_FLAGS (the flags added to every C++ compile), LADDER_ARCH_DISPATCH (ON when hot
# kernels carry run-time clones), LADDER_ARCH_REQUIRED_ISA (the extensions those flags let the compiler use,
# checked by every binary at start-up: core/cpu/isa_check.c).

set(LADDER_ARCH "native" CACHE STRING "CPU target: native, portable, or a -march value (x86-64-v3, znver3, ...)")
option(LADDER_ARCH_PROBE "Compile and run the known-miscompile probe with the chosen flags" ON)
# The option this variable replaces: -DLADDER_NATIVE=OFF asked for no -march, the portable build now.
if(DEFINED LADDER_NATIVE AND NOT LADDER_NATIVE AND LADDER_ARCH STREQUAL "native")
  message(STATUS "ladder: LADDER_NATIVE=OFF is read as LADDER_ARCH=portable")
  set(LADDER_ARCH portable CACHE STRING "" FORCE)
endif()

set(_ladder_x86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(_ladder_x86 ON)
endif()

# Runs the probe with FLAGS (a list) at the build type's optimisation level and at -O2. Sets OUT to
# "ok", "miscompiled: <what>", "cannot run: <why>" or "cannot compile".
function(_ladder_probe_flags FLAGS OUT)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _cfg)
  separate_arguments(_opt UNIX_COMMAND "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_cfg}}")
  set(_result ok)
  foreach(_level IN ITEMS BUILD O2)
    if(_level STREQUAL "O2")
      set(_level_flags -O2)
    else()
      set(_level_flags ${_opt})
    endif()
    string(MAKE_C_IDENTIFIER "${FLAGS};${_level}" _id)
    try_run(_run _compiled ${CMAKE_BINARY_DIR}/ladder_arch_probe/${_id} ${LADDER_ARCH_PROBE_SOURCE}
            COMPILE_DEFINITIONS ${_level_flags} ${FLAGS}
            CXX_STANDARD 20
            COMPILE_OUTPUT_VARIABLE _compile_out
            RUN_OUTPUT_VARIABLE _run_out)
    if(NOT _compiled)
      set(_result "cannot compile")
      break()
    elseif(NOT _run MATCHES "^[0-9]+$")
      set(_result "cannot run: ${_run}")
      break()
    elseif(NOT _run EQUAL 0)
      string(STRIP "${_run_out}" _run_out)
      string(REPLACE "\n" "; " _run_out "${_run_out}")
      string(REPLACE ";" " " _level_text "${_level_flags}")
      set(_result "miscompiled at ${_level_text}: ${_run_out}")
      break()
    endif()
  endforeach()
  set(${OUT} "${_result}" PARENT_SCOPE)
endfunction()

# Picks the first candidate (each a ';'-separated flag list inside a '|'-separated string) the probe
# accepts, reporting every rejection. A candidate that cannot run here (a CPU newer than this one) is kept
# only when it is the user's explicit choice: the start-up check then guards the nodes it runs on.
function(_ladder_pick_flags CANDIDATES EXPLICIT OUT NOTE)
  string(REPLACE "|" ";" _list "${CANDIDATES}")
  set(_rejected "")
  set(_picked "")
  set(_found OFF)
  foreach(_cand IN LISTS _list)
    string(REPLACE " " ";" _flags "${_cand}")
    if(NOT LADDER_ARCH_PROBE)
      set(_picked "${_flags}")
      set(_found ON)
      break()
    endif()
    _ladder_probe_flags("${_flags}" _status)
    if(_status STREQUAL "ok")
      set(_picked "${_flags}")
      set(_found ON)
      break()
    endif()
    if(EXPLICIT AND _status MATCHES "^cannot run")
      message(WARNING "ladder: this CPU cannot run code built with '${_cand}' (${_status}); the build keeps it "
                      "as asked, unprobed. Run `ladder_tests_core --gtest_filter=CodegenPatterns.*` on a target node.")
      set(_picked "${_flags}")
      set(_found ON)
      break()
    endif()
    message(WARNING "ladder: rejecting '${_cand}': ${_status}")
    list(APPEND _rejected "'${_cand}'")
  endforeach()
  if(NOT _found)
    message(FATAL_ERROR "ladder: no candidate flag set passed the code generation probe (${CANDIDATES}); "
                        "if one cannot compile, LADDER_ARCH=${LADDER_ARCH} is not a -march value this compiler "
                        "knows (native, portable, x86-64-v3, znver3, ...); if one is miscompiled, try another "
                        "compiler, or -DLADDER_ARCH_PROBE=OFF at your own risk")
  endif()
  set(${OUT} "${_picked}" PARENT_SCOPE)
  set(_note "")
  if(_rejected)
    string(REPLACE ";" ", " _note "${_rejected}")
    set(_note " (fell back: the code generation probe failed with ${_note})")
  endif()
  set(${NOTE} "${_note}" PARENT_SCOPE)
endfunction()

set(LADDER_ARCH_PROBE_SOURCE ${CMAKE_CURRENT_LIST_DIR}/probes/codegen_probe.cpp CACHE FILEPATH
    "Source of the code generation probe")
mark_as_advanced(LADDER_ARCH_PROBE_SOURCE)

set(LADDER_ARCH_DISPATCH OFF)
if(NOT _ladder_x86)
  # Elsewhere GCC and clang take -mcpu/-march=native too, and there is no x86 ISA ladder to dispatch over.
  if(LADDER_ARCH STREQUAL "native")
    set(_ladder_candidates "-march=native|")
  elseif(LADDER_ARCH STREQUAL "portable")
    set(_ladder_candidates "")
  else()
    set(_ladder_candidates "-march=${LADDER_ARCH}")
  endif()
elseif(LADDER_ARCH STREQUAL "native")
  # AVX-512 off is the first fallback: that code is then what CI's AVX2 machines build and test.
  set(_ladder_candidates "-march=native|-march=native -mno-avx512f|-march=x86-64-v3|-march=x86-64-v2|")
elseif(LADDER_ARCH STREQUAL "portable")
  set(_ladder_candidates "-march=x86-64-v2 -mtune=generic|-mtune=generic")
  set(LADDER_ARCH_DISPATCH ON)
else()
  set(_ladder_candidates "-march=${LADDER_ARCH}|-march=${LADDER_ARCH} -mno-avx512f")
endif()

set(_ladder_signature "${LADDER_ARCH}|${LADDER_ARCH_PROBE}|${CMAKE_CXX_COMPILER}|${CMAKE_CXX_COMPILER_VERSION}|${CMAKE_BUILD_TYPE}|${CMAKE_CXX_FLAGS}")
if(DEFINED LADDER_ARCH_FLAGS_SIGNATURE AND LADDER_ARCH_FLAGS_SIGNATURE STREQUAL _ladder_signature)
  set(LADDER_ARCH_FLAGS "${LADDER_ARCH_FLAGS_CACHED}")
  set(_ladder_note "${LADDER_ARCH_FALLBACK_NOTE}")
else()
  set(_ladder_note "")
  if(_ladder_candidates STREQUAL "")
    set(LADDER_ARCH_FLAGS "")
  else()
    set(_explicit OFF)
    if(NOT LADDER_ARCH STREQUAL "native" AND NOT LADDER_ARCH STREQUAL "portable")
      set(_explicit ON)
    endif()
    _ladder_pick_flags("${_ladder_candidates}" ${_explicit} LADDER_ARCH_FLAGS _ladder_note)
  endif()
  set(LADDER_ARCH_FLAGS_CACHED "${LADDER_ARCH_FLAGS}" CACHE INTERNAL "")
  set(LADDER_ARCH_FALLBACK_NOTE "${_ladder_note}" CACHE INTERNAL "")
  set(LADDER_ARCH_FLAGS_SIGNATURE "${_ladder_signature}" CACHE INTERNAL "")
endif()

# The portable build's clones target x86-64-v3: probe that too, where this CPU can run it.
if(LADDER_ARCH_DISPATCH AND LADDER_ARCH_PROBE)
  _ladder_probe_flags("-march=x86-64-v3" _v3_status)
  if(_v3_status MATCHES "^miscompiled")
    message(WARNING "ladder: the x86-64-v3 clones of the hot kernels would be miscompiled (${_v3_status}); "
                    "the portable build runs the baseline kernels only")
    set(LADDER_ARCH_DISPATCH OFF)
  endif()
endif()

# The extensions the chosen flags let the compiler emit, read from its own predefined macros.
set(LADDER_ARCH_REQUIRED_ISA "")
if(_ladder_x86)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} ${LADDER_ARCH_FLAGS} -dM -E -x c++ /dev/null
                  OUTPUT_VARIABLE _ladder_macros ERROR_QUIET RESULT_VARIABLE _ladder_macros_rc)
  if(_ladder_macros_rc EQUAL 0)
    foreach(_isa IN ITEMS SSE3 SSSE3 SSE4_1 SSE4_2 POPCNT AVX AVX2 FMA F16C BMI BMI2 LZCNT MOVBE AES PCLMUL
                          VPCLMULQDQ VAES SHA ADX RDRND RDSEED GFNI AVXVNNI SSE4A FMA4 XOP AVX512F AVX512VL AVX512BW
                          AVX512DQ AVX512CD AVX512VNNI AVX512BF16 AVX512FP16 AVX512IFMA AVX512VBMI AVX512VBMI2
                          AVX512BITALG AVX512VPOPCNTDQ)
      if(_ladder_macros MATCHES "#define __${_isa}__ ")
        list(APPEND LADDER_ARCH_REQUIRED_ISA ${_isa})
      endif()
    endforeach()
  endif()
endif()

string(REPLACE ";" " " _ladder_flags_text "${LADDER_ARCH_FLAGS}")
string(REPLACE ";" " " LADDER_ARCH_REQUIRED_ISA_TEXT "${LADDER_ARCH_REQUIRED_ISA}")
if(_ladder_flags_text STREQUAL "")
  set(_ladder_flags_text "(compiler default)")
endif()
set(_ladder_dispatch_text "")
if(LADDER_ARCH_DISPATCH)
  set(_ladder_dispatch_text ", hot kernels also for x86-64-v3, chosen at load time")
endif()
message(STATUS "ladder: LADDER_ARCH=${LADDER_ARCH}: ${_ladder_flags_text}${_ladder_dispatch_text}; "
               "binaries need ${LADDER_ARCH_REQUIRED_ISA_TEXT}${_ladder_note}")
set(LADDER_ARCH_FLAGS_TEXT "${_ladder_flags_text}")

add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${LADDER_ARCH_FLAGS}>")
if(LADDER_ARCH_DISPATCH)
  add_compile_definitions(LADDER_HOT_KERNEL_CLONES=1)
endif()
