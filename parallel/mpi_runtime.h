#pragma once
// MPI's lifetime and the job's failure rule: "a failure on one rank ends the whole job with that rank's
// message, never a hang".
//
// Decision: MPI is always initialised, also in a single process started without mpirun. Open MPI 4.1
// initialises such a singleton in ~0.3 s (measured on the dev VM), so there is one code path and
// world size 1 is simply a communicator of size 1.
#include <functional>
#include <string>

namespace ladder::parallel {

// Initialises MPI with MPI_THREAD_FUNNELED (only the thread that initialised MPI calls it; OpenMP worker
// threads never do) and finalizes it on destruction. If MPI is already initialised (e.g. by a test
// main), it neither initialises nor finalizes. One per process; argc/argv may be null.
class MpiRuntime {
 public:
  MpiRuntime(int* argc = nullptr, char*** argv = nullptr);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }
  bool owns_mpi() const { return owned_; }

 private:
  bool owned_ = false;
  int rank_ = 0;
  int size_ = 1;
};

// Writes "[rank r/N] error: <message>" to stderr and calls MPI_Abort(MPI_COMM_WORLD, exit_code): every rank
// of the job is killed by the launcher within seconds, including ranks blocked in a collective. Works
// before MPI_Init (rank from the launch environment) and after MPI_Finalize (then it just exits).
[[noreturn]] void abort_job(const std::string& message, int exit_code = 1);

// Runs `body` and returns its result. An exception escaping it on any rank calls abort_job with the
// exception's message; use it around everything a rank does between MPI init and finalize.
int run_or_abort(const std::function<int()>& body);

// "[rank r/N] " for this process (from MPI when initialised, else from the launch environment).
std::string this_rank_tag();

}  // namespace ladder::parallel
