// A failure on one rank ends the whole job with that rank's message, never a hang: runs the helper
// program under a fresh mpiexec (one rank throws while the others sit in an all-reduce) and checks the
// exit status, the time it took and stderr. Runs in the single-rank instance of this suite only: the
// child job is started with a clean environment, outside the mpiexec that runs these tests.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/parallel/mpi_test_env.h"

namespace {

struct JobResult {
  int exit_code = -1;
  double seconds = 0;
  std::string err, out;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `cmd` under `env -i` (so the outer mpiexec's OMPI_*/PMIX_* variables do not leak into the child
// job), with a hard `timeout` so a hang fails the test instead of stalling it.
JobResult run_job(const std::string& cmd, int timeout_s) {
  const std::string dir = ::testing::TempDir();
  const std::string out = dir + "ladder_failing_rank.out", err = dir + "ladder_failing_rank.err";
  const char* path = std::getenv("PATH");
  const std::string full = "env -i PATH='" + std::string(path ? path : "/usr/bin:/bin") +
                           "' HOME=/tmp OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -s KILL " +
                           std::to_string(timeout_s) + " " + cmd + " >" + out + " 2>" + err;
  JobResult r;
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(full.c_str());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

std::string mpiexec(int np) {
  return std::string(LADDER_MPIEXEC) + " -np " + std::to_string(np) + " --oversubscribe " + LADDER_FAILING_RANK_BINARY;
}

#define SINGLE_RANK_ONLY()                                                                          \
  do {                                                                                              \
    if (ladder::test::test_world().size() != 1) GTEST_SKIP() << "runs in the single-rank instance"; \
  } while (0)

}  // namespace

TEST(FailureHandling, HelperJobSucceedsWhenNoRankFails) {
  SINGLE_RANK_ONLY();
  // The control: the same job without a failure exits 0, so the checks below can tell the difference.
  JobResult r = run_job(mpiexec(2) + " -1", 60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("all 2 ranks finished"), std::string::npos) << r.out << r.err;
}

TEST(FailureHandling, OneRankThrowingEndsTheWholeJobWithItsMessage) {
  SINGLE_RANK_ONLY();
  for (int np : {2, 3}) {
    const int bad = np - 1;
    JobResult r = run_job(mpiexec(np) + " " + std::to_string(bad), 60);
    EXPECT_NE(r.exit_code, 0) << "np=" << np << "\n" << r.err;
    EXPECT_NE(r.exit_code, 128 + 9) << "np=" << np << ": killed by the test's timeout, i.e. the job hung";
    EXPECT_LT(r.seconds, 10.0) << "np=" << np << ": the job took too long to end";
    const std::string line = "[rank " + std::to_string(bad) + "/" + std::to_string(np) + "] error: deliberate failure at step 3";
    EXPECT_NE(r.err.find(line), std::string::npos) << "np=" << np << " stderr:\n" << r.err;
    EXPECT_EQ(r.out.find("finished"), std::string::npos) << r.out;
  }
}

TEST(FailureHandling, SingleProcessWithoutMpirunAlsoReportsAndFails) {
  SINGLE_RANK_ONLY();
  // Singleton MPI: no launcher at all.
  JobResult r = run_job(std::string(LADDER_FAILING_RANK_BINARY) + " 0", 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.seconds, 10.0);
  EXPECT_NE(r.err.find("[rank 0/1] error: deliberate failure at step 3"), std::string::npos) << r.err;
  JobResult ok = run_job(std::string(LADDER_FAILING_RANK_BINARY) + " -1", 60);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("all 1 ranks finished"), std::string::npos) << ok.out;
}
