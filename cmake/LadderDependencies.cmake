# Every dependency through its own CMake or pkg-config package.

find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)

# Open MPI. Our C++ only uses the C API; OMPI_SKIP_MPICXX keeps the deprecated C++ bindings out.
find_package(MPI REQUIRED COMPONENTS C)

# HDF5: the parallel (MPI) build, so that later all ranks can write one file.
set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "ladder needs the parallel HDF5 build (Debian: libhdf5-openmpi-dev); found a serial one at ${HDF5_INCLUDE_DIRS}")
endif()
add_library(ladder_hdf5 INTERFACE)
target_include_directories(ladder_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(ladder_hdf5 INTERFACE ${HDF5_C_LIBRARIES} MPI::MPI_C)
target_compile_definitions(ladder_hdf5 INTERFACE ${HDF5_DEFINITIONS} OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)

find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n data)

# OpenBLAS through pkg-config; CBLAS comes with it. Prefer Debian's OpenMP build (libopenblas-openmp-dev):
# it shares the OpenMP thread pool with our own kernels, and a GEMM called inside a parallel region runs
# single-threaded instead of fighting OpenBLAS's pthreads for the same cores. The RPATH pins that variant.
find_package(PkgConfig REQUIRED)
set(LADDER_OPENBLAS_OPENMP_PC /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp/pkgconfig)
if(EXISTS ${LADDER_OPENBLAS_OPENMP_PC}/openblas.pc)
  set(ENV{PKG_CONFIG_PATH} "${LADDER_OPENBLAS_OPENMP_PC}:$ENV{PKG_CONFIG_PATH}")
endif()
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
