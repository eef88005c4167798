// What the memory table reports: each category's bytes at the moment the device's total peaked (these add
// up to the peak total) beside the category's own peak; and full fine-tuning holds no mapped checkpoint
// once its trainable f32 copy is made, so its frozen weights are 0 at the training peak.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/backbones/backbone.h"
#include "core/tensor/memory.h"
#include "core/tensor/tensor.h"
#include "tests/support/test_paths.h"

namespace {

using namespace ladder::core;

size_t sum_at_peak(const MemoryTracker& mt) {
  size_t s = 0;
  for (size_t c = 0; c < kMemCategories; ++c) s += mt.at_peak(0, MemCategory(c));
  return s;
}

TEST(MemoryAccounting, BreakdownAtThePeakAddsUpToThePeakTotal) {
  auto& mt = MemoryTracker::instance();
  mt.reset_peaks();
  const size_t f0 = mt.current(0, MemCategory::frozen_weights), w0 = mt.current(0, MemCategory::trainable_weights),
               a0 = mt.current(0, MemCategory::activations);
  {
    // Weights loaded, then replaced by a smaller trainable copy, then activations past the load's peak.
    Tensor frozen = Tensor::empty({1000}, DType::f32, MemCategory::frozen_weights);
    frozen = Tensor();
    Tensor trainable = Tensor::empty({500}, DType::f32, MemCategory::trainable_weights);
    Tensor saved = Tensor::empty({2000}, DType::f32, MemCategory::activations);
    EXPECT_EQ(mt.peak(0, MemCategory::frozen_weights), f0 + 4000);  // the category's own peak: at load
    EXPECT_EQ(mt.at_peak(0, MemCategory::frozen_weights), f0);      // none of it at the run's peak
    EXPECT_EQ(mt.at_peak(0, MemCategory::trainable_weights), w0 + 2000);
    EXPECT_EQ(mt.at_peak(0, MemCategory::activations), a0 + 8000);
    EXPECT_EQ(sum_at_peak(mt), mt.peak_total(0));
    bool listed = false;
    for (const auto& r : mt.rows())
      if (r.device == "cpu" && r.category == MemCategory::frozen_weights) {
        listed = true;
        EXPECT_EQ(r.at_peak, f0);
        EXPECT_EQ(r.peak, f0 + 4000);
      }
    EXPECT_TRUE(listed);
    EXPECT_NE(memory_table().find("at peak total"), std::string::npos);
  }
  // reset_peaks starts the breakdown again from what is held now.
  mt.reset_peaks();
  EXPECT_EQ(mt.at_peak(0, MemCategory::activations), mt.current(0, MemCategory::activations));
  EXPECT_EQ(sum_at_peak(mt), mt.peak_total(0));
}

bool safetensors_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(".safetensors") != std::string::npos) return true;
  return false;
}

// Full fine-tuning's trainable copy replaces the mapping: nothing of the checkpoint stays mapped or counted.
TEST(MemoryAccounting, FullFineTuningReleasesTheMappedCheckpoint) {
  auto& mt = MemoryTracker::instance();
  const size_t f0 = mt.current(0, MemCategory::frozen_weights);
  auto model = load_backbone(ladder::test::minilm_dir());
  EXPECT_GT(mt.current(0, MemCategory::frozen_weights), f0 + 80'000'000);  // mapped: 86.6 MiB
  EXPECT_TRUE(safetensors_mapped());
  model->params().set_all_trainable(true);
  EXPECT_EQ(mt.current(0, MemCategory::frozen_weights), f0);
  EXPECT_FALSE(safetensors_mapped());
}

}  // namespace
