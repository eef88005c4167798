#pragma once
// Two `ladder train` runs that must have trained the same model (another layout, a resume): the loss series
// within 1e-4 relative and every trainable parameter of the final checkpoints within `tol` (0: bit for bit).
#include <string>

#include "core/io/checkpoint.h"

namespace ladder::test {

core::CheckpointData final_checkpoint(const std::string& run_dir, int step);
void expect_same_training(const std::string& ref, const std::string& other, int steps, double tol);

}  // namespace ladder::test
