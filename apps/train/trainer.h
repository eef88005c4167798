#pragma once
// The training engine behind `ladder train`: a GLUE task, a backbone with a classification head and one
// or more parameter-efficient methods, AdamW with a warmup schedule, gradient clipping and accumulation,
// periodic evaluation with best-checkpoint tracking, HDF5 checkpoints that resume bit for bit, progress
// lines on rank 0, and a clean stop on SIGTERM/SIGINT/SIGUSR1 (checkpoint, then exit 128 + signal).
#include "apps/train/train_config.h"

namespace ladder::apps {

// Runs the whole job; returns the process exit code.
int run_training(const TrainConfig& cfg, const std::vector<std::string>& argv);

}  // namespace ladder::apps
