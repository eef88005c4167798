// Where a process sits in the job, from each launcher's environment: Open MPI's mpirun, Slurm's srun
// (local task count from the step's run-length-encoded layout when --ntasks-per-node was not given), PMIx,
// and none; a rank outside the world is an error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "parallel/launch_env.h"

namespace {

struct Env {
  std::vector<std::string> set;
  Env() {
    for (const char* v : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
                          "SLURM_PROCID", "SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID",
                          "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "PMIX_RANK", "PMIX_SIZE"})
      unset(v);
  }
  void put(const char* k, const char* v) {
    ::setenv(k, v, 1);
    set.push_back(k);
  }
  void unset(const char* k) {
    if (std::getenv(k)) {
      saved.emplace_back(k, std::getenv(k));
      ::unsetenv(k);
    }
  }
  ~Env() {
    for (auto& k : set) ::unsetenv(k.c_str());
    for (auto& [k, v] : saved) ::setenv(k.c_str(), v.c_str(), 1);
  }
  std::vector<std::pair<std::string, std::string>> saved;
};

}  // namespace

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  Env e;
  const auto env = ladder::parallel::detect_launch_env();
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.launcher, "none");
  EXPECT_EQ(ladder::parallel::rank_tag(env), "");
}

TEST(LaunchEnv, Mpirun) {
  Env e;
  e.put("OMPI_COMM_WORLD_RANK", "3");
  e.put("OMPI_COMM_WORLD_SIZE", "4");
  e.put("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  e.put("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  const auto env = ladder::parallel::detect_launch_env();
  EXPECT_EQ(env.launcher, "mpirun");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_size, 2);
  EXPECT_EQ(ladder::parallel::rank_tag(env), "[rank 3/4] ");
}

TEST(LaunchEnv, SrunReadsTheLocalTaskCountFromTheStepLayout) {
  Env e;
  e.put("SLURM_PROCID", "4");
  e.put("SLURM_STEP_ID", "0");
  e.put("SLURM_NTASKS", "5");
  e.put("SLURM_LOCALID", "0");
  e.put("SLURM_STEP_TASKS_PER_NODE", "2(x2),1");
  e.put("SLURM_NODEID", "2");
  auto env = ladder::parallel::detect_launch_env();
  EXPECT_EQ(env.launcher, "srun");
  EXPECT_EQ(env.world_size, 5);
  EXPECT_EQ(env.local_size, 1);
  ::setenv("SLURM_NODEID", "1", 1);
  EXPECT_EQ(ladder::parallel::detect_launch_env().local_size, 2);
  e.put("SLURM_NTASKS_PER_NODE", "3");  // given explicitly (--ntasks-per-node): it wins
  EXPECT_EQ(ladder::parallel::detect_launch_env().local_size, 3);
}

TEST(LaunchEnv, RankOutsideTheWorldIsAnError) {
  Env e;
  e.put("OMPI_COMM_WORLD_RANK", "4");
  e.put("OMPI_COMM_WORLD_SIZE", "4");
  EXPECT_THROW(ladder::parallel::detect_launch_env(), std::runtime_error);
}
