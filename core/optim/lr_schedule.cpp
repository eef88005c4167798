#include "core/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace ladder::core {

ScheduleKind parse_schedule_kind(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::constant, ScheduleKind::linear, ScheduleKind::cosine})
    if (name == schedule_kind_name(k)) return k;
  throw std::invalid_argument("unknown learning-rate schedule '" + name +
                              "' (valid: constant, linear, cosine)");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::linear: return "linear";
    case ScheduleKind::cosine: return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(ScheduleKind kind, double base_lr, int64_t warmup_steps, int64_t total_steps)
    : kind_(kind), base_lr_(base_lr), warmup_(warmup_steps), total_(total_steps) {
  if (warmup_steps < 0)
    throw std::invalid_argument("lr schedule: warmup_steps must be >= 0, got " + std::to_string(warmup_steps));
  if (kind != ScheduleKind::constant && total_steps < 0)
    throw std::invalid_argument("lr schedule '" + std::string(schedule_kind_name(kind)) +
                                "': total_steps must be >= 0, got " + std::to_string(total_steps));
}

// Each branch is the body of transformers' _get_<kind>_schedule_with_warmup_lr_lambda, in the same order of
// operations (so the doubles agree with Python's exactly).
double LrSchedule::multiplier(int64_t step) const {
  if (step < warmup_) return double(step) / double(std::max<int64_t>(1, warmup_));
  switch (kind_) {
    case ScheduleKind::constant: return 1.0;
    case ScheduleKind::linear:
      return std::max(0.0, double(total_ - step) / double(std::max<int64_t>(1, total_ - warmup_)));
    case ScheduleKind::cosine: {
      const double num_cycles = 0.5;
      const double progress = double(step - warmup_) / double(std::max<int64_t>(1, total_ - warmup_));
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles * 2.0 * progress)));
    }
  }
  return 1.0;
}

}  // namespace ladder::core
