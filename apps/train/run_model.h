#pragma once
// Everything a training run builds from its config, in one place so that `train`, `eval` and `export`
// build the same model: the backbone, the classification head, the methods (registration order is part
// of the checkpoint format), and the tokenized GLUE splits.
#include <memory>
#include <vector>

#include "adapters/heads/sequence_classification_head.h"
#include "adapters/lst/side_network.h"
#include "adapters/method.h"
#include "apps/train/train_config.h"
#include "core/backbones/backbone.h"
#include "core/io/checkpoint.h"
#include "data/glue/glue_dataset.h"

namespace ladder::apps {

struct RunModel {
  std::unique_ptr<core::Backbone> backbone;
  std::unique_ptr<adapters::SequenceClassificationHead> head;  // null for language modelling (task lm)
  std::vector<std::unique_ptr<adapters::Method>> methods;
  std::unique_ptr<adapters::LstSideNetwork> side;  // method "lst": the backbone only feeds the side network
  data::GlueTask task;
  core::Tensor d_features;                          // scratch for the side network's backward
  std::vector<core::Tensor> taps;                   // LST: the whole batch's taps, in tap_dtype
  core::DType tap_dtype = core::DType::f32;         // LST: the store's precision (cache.dtype), online too
  // LST runs its frozen backbone on at most this many token rows at a time (see model_forward): its
  // workspace then stays small whatever the batch (the chunk size's cost: docs/LST.md).
  int lst_chunk_rows = 512;
  // Batches are padded to at least this many tokens (task.pad_to_max_length: the max length; else 0, each
  // batch to its longest row).
  int pad_to = 0;
};

// The run's forward: the backbone (with the pooler's first-token shortcut, or, with a side network,
// without gradients and keeping its layer outputs as ladder taps), the side network when there is one,
// and the head. Returns the logits [B, num_labels].
const core::Tensor& model_forward(RunModel& m, const core::TokenBatch& b, const core::StepOptions& opt);
// The side network and head on given taps (the backbone outputs side->taps() lists, e.g. read from an
// activation store), without running the backbone.
const core::Tensor& model_forward_taps(RunModel& m, const core::TokenBatch& b, const core::StepOptions& opt,
                                       const std::vector<adapters::TapRows>& taps);
// The hidden-state indices a cache of this run holds: the side network's taps, or 0..L without one.
std::vector<int> cache_taps(const RunModel& m);
// Backward of the head's loss (times grad_scale) into whatever trains: head, side network or backbone.
void model_backward(RunModel& m, const int32_t* labels, const float* scores, float grad_scale);

// Loads the backbone (sharded over `tp` when it has more than one rank: every rank of the group must call
// this), adds the head and the methods, allocates gradients.
RunModel build_run_model(const TrainConfig& cfg, core::TensorParallelGroup* tp = nullptr);

// Reads the task's train (optional) and first dev split, tokenized as the run's methods need (prompt tokens
// inserted). Empty train when with_train is false.
void load_glue_splits(const TrainConfig& cfg, const RunModel& m, bool with_train, data::GlueSplit& train,
                      data::GlueSplit& dev);

// Tokenizes rows as the run does for evaluation (max length, prompt tokens inserted).
data::GlueSplit tokenize_for_run(const TrainConfig& cfg, const RunModel& m, data::GlueTask task,
                                 const std::vector<data::GlueExample>& rows, int max_examples);

// Copies a checkpoint's /params into the model's trainable parameters; every trainable parameter must be
// present with its (whole, unsharded) shape, and nothing else; a tensor-parallel rank keeps its part.
// Errors name the checkpoint and the parameter.
void load_trainable_params(RunModel& m, const core::CheckpointData& ck, const std::string& path);

struct EvalResult {
  std::map<std::string, double> metrics;
  double loss = 0;
};
// Forward over a split in length-sorted batches (nothing saved, no dropout).
EvalResult evaluate(RunModel& m, const data::GlueSplit& split, int batch_size, int32_t pad_id);
std::string format_metrics(const std::map<std::string, double>& metrics);

}  // namespace ladder::apps
