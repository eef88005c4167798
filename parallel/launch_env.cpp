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

// SLURM_STEP_TASKS_PER_NODE (or SLURM_TASKS_PER_NODE) reads like "2(x3),1": tasks per node, run-length
// encoded, in node order; SLURM_NODEID picks this node's entry.
static int slurm_tasks_on_this_node(int fallback) {
  const char* layout = std::getenv("SLURM_STEP_TASKS_PER_NODE");
  if (!layout) layout = std::getenv("SLURM_TASKS_PER_NODE");
  int node = 0;
  if (!layout || !read_int("SLURM_NODEID", node)) return fallback;
  const char* p = layout;
  while (*p) {
    char* end = nullptr;
    const long tasks = std::strtol(p, &end, 10);
    if (end == p) return fallback;
    long repeat = 1;
    p = end;
    if (p[0] == '(' && p[1] == 'x') {
      repeat = std::strtol(p + 2, &end, 10);
      if (end == p + 2 || *end != ')') return fallback;
      p = end + 1;
    }
    if (node < repeat) return int(tasks);
    node -= int(repeat);
    if (*p == ',') ++p;
    else if (*p) return fallback;
  }
  return fallback;
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
    // SLURM_NTASKS_PER_NODE exists only with --ntasks-per-node; the step's layout always does.
    if (!read_int("SLURM_NTASKS_PER_NODE", e.local_size)) e.local_size = slurm_tasks_on_this_node(e.local_size);
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
