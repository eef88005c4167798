#pragma once
// The activation store as a run sees it: what `ladder cache` writes for a split (the frozen backbone's
// hidden states at the run's taps, in dataset order, with the identity that ties them to the backbone's
// weights, the tokenizer, the task, the split and the max length) and what `ladder train` with cache.use
// expects of it. Store format: data/activation_store/, docs/ACTIVATION_STORE.md.
#include <string>

#include "apps/train/run_model.h"
#include "data/activation_store/store_reader.h"
#include "data/activation_store/store_schema.h"

namespace ladder::parallel {
class MpiCommunicator;
}

namespace ladder::apps {

// <cache.dir>/<split>.h5 ("train" or "dev").
std::string store_path(const TrainConfig& cfg, const std::string& split);

// What a run built from `cfg` expects of its store for `split` (backbone weights and tokenizer by hash).
data::StoreExpectation store_expectation(const TrainConfig& cfg, const RunModel& m, const std::string& split);

struct CacheStats {
  size_t rows = 0;
  double seconds = 0;
  uintmax_t bytes = 0;  // the file on disk
};

// Runs the frozen backbone (no dropout, nothing saved) over `rows` in dataset order and writes the store
// for `split`. With `world` (more than one process), ranks write disjoint row ranges into the same file.
// Prints progress on the lead rank.
CacheStats write_split_store(const TrainConfig& cfg, RunModel& m, const data::GlueSplit& rows, const std::string& split,
                             parallel::MpiCommunicator* world, bool lead);

// A store batch's hidden states as the side network's taps (f32, or the stored bits read with keep_16bit).
std::vector<adapters::TapRows> store_taps(const data::StoreBatch& b);

// Evaluation from a dev store (the side network and head only), like evaluate().
EvalResult evaluate_from_store(RunModel& m, const data::ActivationStoreReader& store, data::GlueTask task,
                               int batch_size);

}  // namespace ladder::apps
