#pragma once
// Progress on rank 0: redrawn in place on a terminal, periodic plain lines otherwise (Slurm logs, pipes).
#include <cstdint>
#include <string>

namespace ladder::apps {

// Seconds between two plain progress lines of `ladder train` and `ladder cache` at least: a line due
// sooner (log.every steps after the last) is skipped, so that fast runs do not flood a Slurm log.
inline constexpr double kPlainLineInterval_s = 30.0;

class Progress {
 public:
  // `what` names the unit ("rows", "steps"); total 0 = unknown. redraw = false forces plain lines even on a
  // terminal: under mpirun a rank's stdout is a pseudo-terminal even when the job's output goes to a file.
  Progress(std::string label, uint64_t total, std::string what, double plain_interval_s = 10.0, bool redraw = true);
  // Reports `done` units so far plus a free-form tail ("1234 tok/s").
  void update(uint64_t done, const std::string& tail = "");
  // Final line (always printed).
  void finish(const std::string& tail = "");
  bool is_terminal() const { return tty_; }

 private:
  std::string line(uint64_t done, const std::string& tail) const;
  std::string label_, what_;
  uint64_t total_, done_ = 0;
  double t0_, last_print_ = -1, interval_;
  bool tty_;
};

}  // namespace ladder::apps
