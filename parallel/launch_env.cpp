#include "parallel/launch_env.h"

#include <cstdlib>
#include <stdexcept>

namespace ladder::parallel {

static bool read_int(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0) throw std::runtime_error(std::string("environment variable ") + name + "='" + v + "' is not a non-negative integer");
  out = int(x);
  return true;
}

LaunchEnv detect_launch_env() {
  LaunchEnv e;
  if (read_int("OMPI_COMM_WORLD_RANK", e.rank)) {
    e.launcher = "mpirun";
    read_int("OMPI_COMM_WORLD_SIZE", e.world_size);
    read_int("OMPI_COMM_WORLD_LOCAL_RANK", e.local_rank);
    read_int("OMPI_COMM_WORLD_LOCAL_SIZE", e.local_size);
  } else if (read_int("SLURM_PROCID", e.rank) && std::getenv("SLURM_STEP_ID")) {
    e.launcher = "srun";
    read_int("SLURM_NTASKS", e.world_size);
    read_int("SLURM_LOCALID", e.local_rank);
    read_int("SLURM_NTASKS_PER_NODE", e.local_size);
  } else if (read_int("PMIX_RANK", e.rank)) {
    e.launcher = "pmix";
    read_int("PMIX_SIZE", e.world_size);
    read_int("PMIX_LOCAL_RANK", e.local_rank);
    read_int("PMIX_LOCAL_SIZE", e.local_size);
  } else {
    e.rank = 0;
  }
  if (e.rank >= e.world_size) throw std::runtime_error("launcher reports rank " + std::to_string(e.rank) + " of a world of " + std::to_string(e.world_size));
  return e;
}

std::string rank_tag(const LaunchEnv& env) {
  if (env.world_size <= 1) return "";
  return "[rank " + std::to_string(env.rank) + "/" + std::to_string(env.world_size) + "] ";
}

}  // namespace ladder::parallel
