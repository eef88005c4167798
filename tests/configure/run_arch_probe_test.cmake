# ctest -R arch_probe: configures tests/configure/arch_probe_project and checks that LadderArch.cmake rejected
# each AVX2 flag set with a message, and picked the first safe one. Arguments: LADDER_SOURCE_DIR, WORK_DIR,
# HAS_AVX2 (whether this CPU runs AVX2 code, i.e. whether -march=native enables it).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${LADDER_SOURCE_DIR}/tests/configure/arch_probe_project -B ${WORK_DIR}
                        -DLADDER_SOURCE_DIR=${LADDER_SOURCE_DIR} -DLADDER_ARCH=native
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
# CMake wraps long messages: compare with every run of spaces and newlines as one space.
string(REGEX REPLACE "[ \n]+" " " all "${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed (${rc}):\n${all}")
endif()
file(READ ${WORK_DIR}/picked_flags.txt picked)
file(READ ${WORK_DIR}/required_isa.txt isa)
if(HAS_AVX2)
  foreach(rejected IN ITEMS "-march=native" "-march=native -mno-avx512f" "-march=x86-64-v3")
    string(FIND "${all}" "rejecting '${rejected}': miscompiled" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "no rejection message for '${rejected}':\n${all}")
    endif()
  endforeach()
  if(NOT picked STREQUAL "-march=x86-64-v2")
    message(FATAL_ERROR "picked '${picked}', expected -march=x86-64-v2:\n${all}")
  endif()
  if(isa MATCHES "AVX")
    message(FATAL_ERROR "the x86-64-v2 fallback must not require AVX: ${isa}")
  endif()
else()
  if(NOT picked STREQUAL "-march=native")
    message(FATAL_ERROR "picked '${picked}' on a CPU without AVX2, expected -march=native:\n${all}")
  endif()
endif()
string(FIND "${all}" "ladder: LADDER_ARCH=native: ${picked}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the summary line does not name the flags:\n${all}")
endif()
message(STATUS "picked '${picked}', requiring '${isa}'")

# A LADDER_ARCH the compiler does not know stops the configure, naming it.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${LADDER_SOURCE_DIR}/tests/configure/arch_probe_project -B ${WORK_DIR}-bad
                        -DLADDER_SOURCE_DIR=${LADDER_SOURCE_DIR} -DLADDER_ARCH=not-a-cpu
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
file(REMOVE_RECURSE ${WORK_DIR}-bad)
if(rc EQUAL 0)
  message(FATAL_ERROR "LADDER_ARCH=not-a-cpu configured:\n${out}${err}")
endif()
string(REGEX REPLACE "[ \n]+" " " bad "${out}${err}")
string(FIND "${bad}" "rejecting '-march=not-a-cpu': cannot compile" at)
string(FIND "${bad}" "LADDER_ARCH=not-a-cpu is not a -march value" at2)
if(at EQUAL -1 OR at2 EQUAL -1)
  message(FATAL_ERROR "LADDER_ARCH=not-a-cpu failed without naming it:\n${out}${err}")
endif()
