#pragma once
// Learning-rate schedules with linear warmup, exactly Hugging Face transformers' LambdaLR multipliers:
//   constant: get_constant_schedule_with_warmup
//   linear:   get_linear_schedule_with_warmup (decays to 0 at total_steps)
//   cosine:   get_cosine_schedule_with_warmup, num_cycles = 0.5 (half a cosine from 1 to 0)
// `step` is the 0-based optimizer step as HF's LambdaLR sees it: update k (k = 0, 1, ...) uses
// lr_at(k) = base_lr * multiplier(k), so the very first update of a warmup schedule has lr 0, as in HF.
// Values are doubles computed in HF's operation order, so they equal Python's to the bit.
#include <cstdint>
#include <string>

namespace ladder::core {

enum class ScheduleKind { constant, linear, cosine };

// "constant", "linear", "cosine"; anything else throws std::invalid_argument listing the valid names.
ScheduleKind parse_schedule_kind(const std::string& name);
const char* schedule_kind_name(ScheduleKind kind);

class LrSchedule {
 public:
  // warmup_steps >= 0; total_steps (HF's num_training_steps) is ignored by `constant`.
  LrSchedule(ScheduleKind kind, double base_lr, int64_t warmup_steps, int64_t total_steps);

  // HF's lr_lambda(step).
  double multiplier(int64_t step) const;
  double lr_at(int64_t step) const { return base_lr_ * multiplier(step); }

  ScheduleKind kind() const { return kind_; }
  double base_lr() const { return base_lr_; }
  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }

 private:
  ScheduleKind kind_;
  double base_lr_;
  int64_t warmup_, total_;
};

}  // namespace ladder::core
