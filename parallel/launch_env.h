#pragma once
// Where this process sits in the job, read from the launcher's environment before MPI starts:
// Open MPI's mpirun (OMPI_COMM_WORLD_*), Slurm's srun (SLURM_PROCID/NTASKS/LOCALID), PMIx (PMIX_RANK)
// or nothing (a single process). Used to tag log lines and, on GPU nodes, to pick the device.
#include <string>

namespace ladder::parallel {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string launcher = "none";  // "mpirun", "srun", "pmix" or "none"
};

LaunchEnv detect_launch_env();
// "[rank 3/8] " when world_size > 1, "" otherwise.
std::string rank_tag(const LaunchEnv& env);

}  // namespace ladder::parallel
