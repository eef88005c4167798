#pragma once
// The MPI world every parallel test runs in (made by mpi_test_main.cpp after MPI_Init). Tests are run by
// CTest under mpiexec with 1, 2 and 4 ranks; every test must take the same path (including GTEST_SKIP)
// on every rank, or a collective would wait for a rank that never comes.
#include "parallel/mpi_communicator.h"

namespace ladder::test {

parallel::MpiCommunicator& test_world();

}  // namespace ladder::test
