#pragma once
// Everything a training run builds from its config, in one place so that `train`, `eval` and `export`
// build the same model: the backbone, the classification head, the methods (registration order is part
// of the checkpoint format), and the tokenized GLUE splits.
#include <memory>
#include <vector>

#include "adapters/heads/sequence_classification_head.h"
#include "adapters/method.h"
#include "apps/train/train_config.h"
#include "core/backbones/backbone.h"
#include "core/io/checkpoint.h"
#include "data/glue/glue_dataset.h"

namespace ladder::apps {

struct RunModel {
  std::unique_ptr<core::Backbone> backbone;
  std::unique_ptr<adapters::SequenceClassificationHead> head;
  std::vector<std::unique_ptr<adapters::Method>> methods;
  data::GlueTask task;
};

// Loads the backbone, adds the head and the methods, allocates gradients.
RunModel build_run_model(const TrainConfig& cfg);

// Reads the task's train (optional) and first dev split, tokenized as the run's methods need (prompt tokens
// inserted). Empty train when with_train is false.
void load_glue_splits(const TrainConfig& cfg, const RunModel& m, bool with_train, data::GlueSplit& train,
                      data::GlueSplit& dev);

// Tokenizes rows as the run does for evaluation (max length, prompt tokens inserted).
data::GlueSplit tokenize_for_run(const TrainConfig& cfg, const RunModel& m, data::GlueTask task,
                                 const std::vector<data::GlueExample>& rows, int max_examples);

// Copies a checkpoint's /params into the model's trainable parameters; every trainable parameter must be
// present with its shape, and nothing else. Errors name the checkpoint and the parameter.
void load_trainable_params(RunModel& m, const core::CheckpointData& ck, const std::string& path);

struct EvalResult {
  std::map<std::string, double> metrics;
  double loss = 0;
};
// Forward over a split in length-sorted batches (nothing saved, no dropout).
EvalResult evaluate(RunModel& m, const data::GlueSplit& split, int batch_size, int32_t pad_id);
std::string format_metrics(const std::map<std::string, double>& metrics);

}  // namespace ladder::apps
