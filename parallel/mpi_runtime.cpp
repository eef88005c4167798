#include "parallel/mpi_runtime.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>

#include "parallel/launch_env.h"

namespace ladder::parallel {

static bool mpi_active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (fin) throw std::runtime_error("MpiRuntime: MPI was already finalized in this process (it cannot restart)");
  int init = 0;
  MPI_Initialized(&init);
  if (!init) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw std::runtime_error("MPI_Init_thread failed");
    owned_ = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw std::runtime_error("MPI provides thread level " + std::to_string(provided) + ", ladder needs MPI_THREAD_FUNNELED");
    }
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiRuntime::~MpiRuntime() {
  if (owned_ && mpi_active()) MPI_Finalize();
}

std::string this_rank_tag() {
  int rank = 0, size = 1;
  if (mpi_active()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  } else {
    try {
      LaunchEnv e = detect_launch_env();
      rank = e.rank;
      size = e.world_size;
    } catch (const std::exception&) {
    }
  }
  return "[rank " + std::to_string(rank) + "/" + std::to_string(size) + "] ";
}

void abort_job(const std::string& message, int exit_code) {
  std::fflush(stdout);
  // One fprintf per line keeps lines from different ranks from interleaving mid-line.
  std::fprintf(stderr, "%serror: %s\n", this_rank_tag().c_str(), message.c_str());
  std::fflush(stderr);
  // MPI_Abort makes the launcher kill every rank, so peers blocked in a collective do not hang.
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

int run_or_abort(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    abort_job(e.what());
  } catch (...) {
    abort_job("unknown exception (not derived from std::exception)");
  }
}

}  // namespace ladder::parallel
