#pragma once
// The effective configuration of `ladder train`: an INI file whose [section] key = value lines are the
// dotted options section.key, overridden by --section.key value on the command line. Every key has a
// default and a help line (`ladder train --help` lists them); an unknown or misspelt key is an error that
// names it and suggests the closest.
#include <string>
#include <vector>

#include "adapters/method_options.h"

namespace ladder::apps {

struct TrainConfig {
  // [model]
  std::string model_dir;
  std::string frozen_dtype = "f32";  // how frozen Linear weights are held: f32, bf16 or f16 (core/modules/weight_view.h)
  // [task]
  std::string task = "sst2";
  std::string data_dir;  // default: $LADDER_SHARED or ../shared, then data/glue/<GLUE dir>
  int max_length = 128;
  bool pad_to_max_length = false;  // pad every batch to max_length instead of its longest row
  int max_train_examples = 0;  // 0 = all
  int max_eval_examples = 0;
  std::string train_text, eval_text;  // task lm: the text files (defaults under <shared>/data/text)
  std::string text_format = "text";   // task lm: text or pairs
  // [method]
  std::string method = "lora";
  adapters::MethodConfig method_config;  // every registered method's method.<key> options
  // [train]
  int batch_size = 32;  // per rank and micro-batch: a step trains on batch_size x grad_accum x dp sequences
  int grad_accum = 1;
  int epochs = 3;
  int max_steps = 0;  // > 0 overrides epochs
  double lr = 5e-4;
  double weight_decay = 0.01;
  std::string optimizer = "adamw";  // core::make_optimizer's kind
  std::string schedule = "linear";
  double warmup_ratio = 0.06;
  int warmup_steps = -1;  // >= 0 overrides warmup_ratio
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  int threads = 0;
  // [eval]
  int eval_every = 0;  // steps; 0 = at the end only
  int eval_batch_size = 64;
  bool eval_all_ranks = true;  // DyLoRA: evaluate every rank 1..r_max at the end
  // [checkpoint]
  std::string out_dir = "runs/train";
  int save_every = 0;  // steps; 0 = at evaluations and at the end
  int keep_last = 2;
  bool resume = true;
  bool start_over = false;  // resume finding only unreadable checkpoints trains from step 0 instead of failing
  // [parallel] (the process count comes from the launcher: mpirun -np N, srun)
  int tp = 1;               // tensor-parallel group size; data parallelism takes the rest of the world
  double bucket_mb = 4.0;   // gradient all-reduce bucket size (this VM's MPI slows above ~16 MB per call)
  // [cache] (activation store: `ladder cache` writes it, `ladder train` reads it with cache.use)
  std::string cache_dir;         // default runs/cache-<task>
  std::string cache_dtype = "f16";
  bool cache_use = false;        // train the LST side network from the store, without the backbone
  bool cache_checksum = true;    // HDF5's Fletcher-32 on the store's datasets (a damaged chunk is a read error)
  // [log]
  int log_every = 20;
  std::string report;

  std::string effective_ini;  // every key with its value, as INI: stored in checkpoints
};

// Parses `args` (after the command name): --config FILE, overrides, --help. Returns false when help was
// printed. `ini_text`, when given, is used as the config file (e.g. the effective config stored in a
// checkpoint). `command` is the ladder command whose usage line --help prints (train and cache share
// these keys).
bool parse_train_config(const std::vector<std::string>& args, TrainConfig& cfg, const std::string* ini_text = nullptr,
                        const std::string& command = "train");

}  // namespace ladder::apps
