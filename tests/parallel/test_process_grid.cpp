// ProcessGrid at every world size CTest runs (1, 2, 4) with tp = 1, 2 (and tp = world): ranks, group
// membership read back through the group communicators themselves, and the error for a tp that does not
// divide the world.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parallel/launch_env.h"
#include "parallel/process_grid.h"
#include "tests/parallel/mpi_test_env.h"

using ladder::parallel::ProcessGrid;
using ladder::parallel::ReduceOp;
using ladder::test::test_world;

namespace {

// World ranks of a communicator's members, in its rank order (all_gather of each member's world rank).
std::vector<int> members(ladder::parallel::Communicator& c) {
  float me = float(test_world().rank());
  std::vector<float> all(size_t(c.size()));
  c.all_gather(&me, all.data(), 1);
  return std::vector<int>(all.begin(), all.end());
}

void check_grid(int tp) {
  auto& w = test_world();
  const int n = w.size(), r = w.rank();
  ProcessGrid g(w, tp);
  EXPECT_EQ(g.world_rank(), r);
  EXPECT_EQ(g.world_size(), n);
  EXPECT_EQ(g.tp(), tp);
  EXPECT_EQ(g.dp(), n / tp);
  EXPECT_EQ(g.tp_rank(), r % tp);
  EXPECT_EQ(g.dp_rank(), r / tp);
  EXPECT_EQ(g.world_rank_of(g.dp_rank(), g.tp_rank()), r);
  EXPECT_EQ(g.tp_comm().size(), tp);
  EXPECT_EQ(g.dp_comm().size(), n / tp);
  EXPECT_EQ(g.tp_comm().rank(), g.tp_rank());
  EXPECT_EQ(g.dp_comm().rank(), g.dp_rank());

  // tp group: contiguous ranks dp_rank*tp .. dp_rank*tp + tp-1; dp group: same tp_rank in every tp group.
  std::vector<int> tp_expect, dp_expect;
  for (int t = 0; t < tp; ++t) tp_expect.push_back(g.dp_rank() * tp + t);
  for (int d = 0; d < n / tp; ++d) dp_expect.push_back(d * tp + g.tp_rank());
  EXPECT_EQ(members(g.tp_comm()), tp_expect);
  EXPECT_EQ(members(g.dp_comm()), dp_expect);

  // The local rank is the launcher's (mpirun on one machine: the world rank).
  auto env = ladder::parallel::detect_launch_env();
  EXPECT_EQ(g.local_rank(), env.local_rank);
  if (env.launcher == "mpirun" && env.local_size == n) {
    EXPECT_EQ(g.local_rank(), r);
  }
}

}  // namespace

TEST(ProcessGrid, Tp1IsPureDataParallel) { check_grid(1); }

TEST(ProcessGrid, Tp2) {
  if (test_world().size() % 2 != 0) GTEST_SKIP() << "tp=2 needs an even world; the error case is tested below";
  check_grid(2);
}

TEST(ProcessGrid, TpEqualsWorldIsPureTensorParallel) { check_grid(test_world().size()); }

TEST(ProcessGrid, GroupCollectivesStayInsideTheGroup) {
  auto& w = test_world();
  if (w.size() != 4) GTEST_SKIP() << "the 2 x 2 layout needs 4 ranks";
  ProcessGrid g(w, 2);
  std::vector<int64_t> v = {w.rank()};
  g.tp_comm().all_reduce(v.data(), 1, ReduceOp::sum);
  EXPECT_EQ(v[0], g.dp_rank() == 0 ? 0 + 1 : 2 + 3);
  v = {w.rank()};
  g.dp_comm().all_reduce(v.data(), 1, ReduceOp::sum);
  EXPECT_EQ(v[0], g.tp_rank() == 0 ? 0 + 2 : 1 + 3);
}

TEST(ProcessGrid, TpThatDoesNotDivideTheWorldIsAnErrorNamingBoth) {
  auto& w = test_world();
  const int n = w.size();
  const int bad = n + 1;  // never divides n (n >= 1)
  try {
    ProcessGrid g(w, bad);
    FAIL() << "tp=" << bad << " accepted for a world of " << n;
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--tp " + std::to_string(bad)), std::string::npos) << msg;
    EXPECT_NE(msg.find("world size " + std::to_string(n)), std::string::npos) << msg;
  }
  EXPECT_THROW(ProcessGrid(w, 0), std::invalid_argument);
  if (n == 4) {
    EXPECT_THROW(ProcessGrid(w, 3), std::invalid_argument);
  }
}
