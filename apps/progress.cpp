#include "apps/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace ladder::apps {

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::string label, uint64_t total, std::string what, double plain_interval_s, bool redraw)
    : label_(std::move(label)), what_(std::move(what)), total_(total), t0_(now_s()), interval_(plain_interval_s),
      tty_(redraw && ::isatty(STDOUT_FILENO) == 1) {}

std::string Progress::line(uint64_t done, const std::string& tail) const {
  const double el = now_s() - t0_;
  char buf[256];
  if (total_ > 0) {
    const double frac = double(done) / double(total_);
    const double eta = done > 0 ? el / frac - el : 0;
    std::snprintf(buf, sizeof buf, "%s %llu/%llu %s (%.0f%%) %.1fs elapsed, ETA %.1fs", label_.c_str(),
                  (unsigned long long)done, (unsigned long long)total_, what_.c_str(), 100 * frac, el, eta);
  } else {
    std::snprintf(buf, sizeof buf, "%s %llu %s %.1fs elapsed", label_.c_str(), (unsigned long long)done, what_.c_str(), el);
  }
  std::string s = buf;
  if (!tail.empty()) s += "  " + tail;
  return s;
}

void Progress::update(uint64_t done, const std::string& tail) {
  done_ = done;
  const double t = now_s();
  if (tty_) {
    if (t - last_print_ < 0.1) return;
    std::printf("\r\033[K%s", line(done, tail).c_str());
    std::fflush(stdout);
  } else {
    if (last_print_ >= 0 && t - last_print_ < interval_) return;
    std::printf("%s\n", line(done, tail).c_str());
    std::fflush(stdout);
  }
  last_print_ = t;
}

void Progress::finish(const std::string& tail) {
  if (tty_) std::printf("\r\033[K");
  std::printf("%s\n", line(done_, tail).c_str());
  std::fflush(stdout);
}

}  // namespace ladder::apps
