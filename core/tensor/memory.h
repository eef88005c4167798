#pragma once
// Memory accounting: every byte ladder holds is tagged with a category, per device.
// The tracker keeps current and peak bytes per (device, category); every run prints it beside peak RSS.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ladder::core {

enum class MemCategory : uint8_t {
  frozen_weights,
  trainable_weights,
  gradients,
  optimizer_state,
  activations,  // saved for backward
  workspace,    // scratch and outputs that are not saved
  communication,
  count_
};
constexpr size_t kMemCategories = size_t(MemCategory::count_);
const char* mem_category_name(MemCategory c);

enum class DeviceKind : uint8_t { cpu, cuda };
constexpr int kMaxDevices = 9;  // cpu + up to 8 GPUs per process

struct MemoryRow {
  std::string device;
  MemCategory category;
  size_t current = 0;
  size_t peak = 0;     // this category's own peak, whenever it was reached
  size_t at_peak = 0;  // this category's bytes when the device's total peaked: the rows of a device add up
                       // to its peak total (a load-time peak, e.g. weights mapped before their trainable
                       // copy replaces them, does not appear beside what training holds later)
};

class MemoryTracker {
 public:
  static MemoryTracker& instance();
  // slot 0 is the CPU, slot 1+i is CUDA device i.
  void add(int slot, MemCategory c, size_t bytes);
  void sub(int slot, MemCategory c, size_t bytes);
  size_t current(int slot, MemCategory c) const;
  size_t peak(int slot, MemCategory c) const;
  // Bytes of category c when the total of `slot` last reached its peak.
  size_t at_peak(int slot, MemCategory c) const;
  // Peak of the per-device total (not the sum of per-category peaks).
  size_t peak_total(int slot) const;
  size_t current_total(int slot) const;
  // Rows for every device that ever held memory.
  std::vector<MemoryRow> rows() const;
  // Number of owned allocations made so far (a training step must make none after the first).
  size_t allocations() const { return allocations_.load(); }
  void count_allocation() { allocations_.fetch_add(1, std::memory_order_relaxed); }
  // Forget the peaks (current stays) so a phase can be measured on its own.
  void reset_peaks();

 private:
  struct Counter {
    std::atomic<size_t> current{0};
    std::atomic<size_t> peak{0};
  };
  std::array<std::array<Counter, kMemCategories>, kMaxDevices> counters_;
  std::array<Counter, kMaxDevices> totals_;
  std::array<std::array<std::atomic<size_t>, kMemCategories>, kMaxDevices> at_peak_{};
  std::mutex at_peak_mutex_;  // taken only when a device's total reaches a new peak
  std::atomic<size_t> allocations_{0};
};

// Bytes held outside a Tensor (e.g. vectors a reader fills), accounted to a CPU category while this object
// lives. Movable, not copyable.
class TrackedBytes {
 public:
  TrackedBytes() = default;
  TrackedBytes(MemCategory c, size_t bytes) : cat_(c), bytes_(bytes) { MemoryTracker::instance().add(0, c, bytes); }
  ~TrackedBytes() { if (bytes_) MemoryTracker::instance().sub(0, cat_, bytes_); }
  TrackedBytes(TrackedBytes&& o) noexcept : cat_(o.cat_), bytes_(o.bytes_) { o.bytes_ = 0; }
  TrackedBytes& operator=(TrackedBytes&& o) noexcept {
    if (this != &o) {
      if (bytes_) MemoryTracker::instance().sub(0, cat_, bytes_);
      cat_ = o.cat_;
      bytes_ = o.bytes_;
      o.bytes_ = 0;
    }
    return *this;
  }
  TrackedBytes(const TrackedBytes&) = delete;
  TrackedBytes& operator=(const TrackedBytes&) = delete;
  size_t bytes() const { return bytes_; }

 private:
  MemCategory cat_ = MemCategory::workspace;
  size_t bytes_ = 0;
};

// Process peak resident set size (VmHWM) in bytes, 0 when unknown.
size_t peak_rss_bytes();
size_t current_rss_bytes();

// "12.3 MiB" style.
std::string format_bytes(size_t bytes);
// The table ladder prints at the end of every run.
std::string memory_table();

}  // namespace ladder::core
