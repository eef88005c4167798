// A tiny MPI program for the failure test: every rank joins an all-reduce loop, except that rank
// `fail_rank` (argv[1]; -1 = none) throws from inside run_or_abort after a short delay. The job must then
// end with that rank's message and a non-zero exit, not hang the others in their collective.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"

int main(int argc, char** argv) {
  ladder::parallel::MpiRuntime mpi(&argc, &argv);
  const int fail_rank = argc > 1 ? std::atoi(argv[1]) : -1;
  return ladder::parallel::run_or_abort([&] {
    auto world = ladder::parallel::MpiCommunicator::world();
    float x = 1.0f;
    for (int step = 0; step < 20; ++step) {
      if (world->rank() == fail_rank && step == 3) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the others are now waiting in all_reduce
        throw std::runtime_error("deliberate failure at step " + std::to_string(step));
      }
      world->all_reduce(&x, 1, ladder::parallel::ReduceOp::average);
    }
    if (world->rank() == 0) std::printf("all %d ranks finished\n", world->size());
    return 0;
  });
}
