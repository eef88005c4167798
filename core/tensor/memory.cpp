#include "core/tensor/memory.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace ladder::core {

const char* mem_category_name(MemCategory c) {
  switch (c) {
    case MemCategory::frozen_weights: return "frozen weights";
    case MemCategory::trainable_weights: return "trainable weights";
    case MemCategory::gradients: return "gradients";
    case MemCategory::optimizer_state: return "optimizer state";
    case MemCategory::activations: return "saved activations";
    case MemCategory::workspace: return "workspace";
    case MemCategory::communication: return "communication";
    case MemCategory::count_: break;
  }
  return "?";
}

MemoryTracker& MemoryTracker::instance() {
  static MemoryTracker t;
  return t;
}

// True when v became the new peak.
static bool raise_peak(std::atomic<size_t>& peak, size_t v) {
  size_t p = peak.load(std::memory_order_relaxed);
  while (v > p)
    if (peak.compare_exchange_weak(p, v, std::memory_order_relaxed)) return true;
  return false;
}

void MemoryTracker::add(int slot, MemCategory c, size_t bytes) {
  auto& k = counters_[slot][size_t(c)];
  raise_peak(k.peak, k.current.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  auto& t = totals_[slot];
  if (raise_peak(t.peak, t.current.fetch_add(bytes, std::memory_order_relaxed) + bytes)) {
    // Allocations from other threads may land between the counters read here: the breakdown is exact
    // for the single-threaded allocations that set a run's peak and within those few bytes otherwise.
    std::lock_guard<std::mutex> lock(at_peak_mutex_);
    for (size_t i = 0; i < kMemCategories; ++i)
      at_peak_[slot][i].store(counters_[slot][i].current.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
}

void MemoryTracker::sub(int slot, MemCategory c, size_t bytes) {
  counters_[slot][size_t(c)].current.fetch_sub(bytes, std::memory_order_relaxed);
  totals_[slot].current.fetch_sub(bytes, std::memory_order_relaxed);
}

size_t MemoryTracker::current(int slot, MemCategory c) const { return counters_[slot][size_t(c)].current.load(); }
size_t MemoryTracker::peak(int slot, MemCategory c) const { return counters_[slot][size_t(c)].peak.load(); }
size_t MemoryTracker::at_peak(int slot, MemCategory c) const { return at_peak_[slot][size_t(c)].load(); }
size_t MemoryTracker::peak_total(int slot) const { return totals_[slot].peak.load(); }
size_t MemoryTracker::current_total(int slot) const { return totals_[slot].current.load(); }

std::vector<MemoryRow> MemoryTracker::rows() const {
  std::vector<MemoryRow> out;
  for (int s = 0; s < kMaxDevices; ++s) {
    if (s > 0 && totals_[s].peak.load() == 0) continue;
    std::string dev = s == 0 ? "cpu" : "cuda:" + std::to_string(s - 1);
    for (size_t c = 0; c < kMemCategories; ++c)
      out.push_back({dev, MemCategory(c), counters_[s][c].current.load(), counters_[s][c].peak.load(), at_peak_[s][c].load()});
  }
  return out;
}

void MemoryTracker::reset_peaks() {
  std::lock_guard<std::mutex> lock(at_peak_mutex_);
  for (int s = 0; s < kMaxDevices; ++s) {
    for (size_t c = 0; c < kMemCategories; ++c) {
      counters_[s][c].peak.store(counters_[s][c].current.load());
      at_peak_[s][c].store(counters_[s][c].current.load());
    }
    totals_[s].peak.store(totals_[s].current.load());
  }
}

static size_t status_field_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t klen = std::char_traits<char>::length(key);
  while (std::getline(f, line)) {
    if (line.compare(0, klen, key) == 0) return std::stoull(line.substr(klen + 1)) * 1024;
  }
  return 0;
}
size_t peak_rss_bytes() { return status_field_kib("VmHWM"); }
size_t current_rss_bytes() { return status_field_kib("VmRSS"); }

std::string format_bytes(size_t bytes) {
  char buf[32];
  double b = double(bytes);
  if (b >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else if (b >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}

std::string memory_table() {
  auto& t = MemoryTracker::instance();
  std::ostringstream os;
  char line[160];
  std::snprintf(line, sizeof line, "%-8s %-20s %14s %14s %14s\n", "device", "category", "current", "at peak total",
                "own peak");
  os << line;
  for (const auto& r : t.rows()) {
    std::snprintf(line, sizeof line, "%-8s %-20s %14s %14s %14s\n", r.device.c_str(), mem_category_name(r.category),
                  format_bytes(r.current).c_str(), format_bytes(r.at_peak).c_str(), format_bytes(r.peak).c_str());
    os << line;
  }
  for (int s = 0; s < kMaxDevices; ++s) {
    if (s > 0 && t.peak_total(s) == 0) continue;
    std::string dev = s == 0 ? "cpu" : "cuda:" + std::to_string(s - 1);
    std::snprintf(line, sizeof line, "%-8s %-20s %14s %14s %14s\n", dev.c_str(), "total (tracked)",
                  format_bytes(t.current_total(s)).c_str(), format_bytes(t.peak_total(s)).c_str(), "");
    os << line;
  }
  std::snprintf(line, sizeof line, "%-8s %-20s %14s %14s %14s\n", "process", "RSS", format_bytes(current_rss_bytes()).c_str(),
                format_bytes(peak_rss_bytes()).c_str(), "");
  os << line;
  return os.str();
}

}  // namespace ladder::core
