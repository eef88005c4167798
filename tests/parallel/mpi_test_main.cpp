// GoogleTest main for tests/parallel: initialises MPI, lets only rank 0 print the usual report (other
// ranks keep a one-line-per-failure printer tagged with their rank, so a failure there is not silent),
// and returns failure on every rank when any rank failed.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "parallel/mpi_runtime.h"
#include "tests/parallel/mpi_test_env.h"

namespace ladder::test {

static parallel::MpiCommunicator* g_world = nullptr;
parallel::MpiCommunicator& test_world() { return *g_world; }

namespace {
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank, int size) : rank_(rank), size_(size) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d/%d] %s:%d: failure\n%s\n", rank_, size_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_, size_;
};
}  // namespace

}  // namespace ladder::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ladder::parallel::MpiRuntime mpi(&argc, &argv);
  int failed = 0;
  {
    auto world = ladder::parallel::MpiCommunicator::world();
    ladder::test::g_world = world.get();
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    if (world->rank() != 0) {
      delete listeners.Release(listeners.default_result_printer());
      delete listeners.Release(listeners.default_xml_generator());
      listeners.Append(new ladder::test::RankFailurePrinter(world->rank(), world->size()));
    }
    failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
    // Any rank's failure fails the run everywhere (mpiexec's exit code then reflects it).
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    ladder::test::g_world = nullptr;
  }
  return failed;
}
