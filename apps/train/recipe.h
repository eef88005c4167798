#pragma once
// A recipe: what one training step of a run means and how the run is evaluated. The trainer's loop
// (apps/train/trainer.cpp) owns the schedule, the optimizer, checkpoints, signals and the report; it asks
// the recipe for the data it trains on, hands it each micro-batch's rows and asks it to evaluate, and
// never looks at which method or data source the run uses.
//
// Recipes today: training on tokenized GLUE rows (every method, side tuning online included) and training
// from the activation stores `ladder cache` wrote (side tuning without the backbone). Sub-models (DyLoRA's
// ranks, later SortedNet's depths) come from the run's methods and are evaluated the same way by both.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "data/glue/sampler.h"

namespace ladder::apps {

class DataParallel;

struct MicroStep {
  double loss = 0;  // the head's loss of this micro-batch, before grad_scale
  long tokens = 0;  // its real (unpadded) tokens
};

// One evaluation of one model: the whole one (sub_model 0) or a sub-model of the run's methods.
struct EvalRow {
  int sub_model = 0;
  EvalResult result;
};

class Recipe {
 public:
  explicit Recipe(RunModel& m) : model_(m) {}
  virtual ~Recipe() = default;

  // A line for the start-up message ("" for none), e.g. where the training rows come from.
  virtual std::string describe() const { return ""; }
  // The task's name in messages and reports, the dev metric that picks the best checkpoint, and whether
  // higher is better (GLUE's metrics; perplexity is better lower).
  virtual std::string task_name() const = 0;
  virtual std::string primary_metric() const = 0;
  virtual bool higher_is_better() const { return true; }
  // Token counts of the training examples (the sampler buckets by them) and the dev split's size.
  virtual const std::vector<int64_t>& train_lengths() const = 0;
  virtual size_t dev_rows() const = 0;

  // Before a step's micro-batches: the methods' step hooks (DyLoRA draws its rank), then the recipe's own
  // (reading ahead). `sampler` has just handed out this step's global batch.
  void begin_step(int64_t step, const data::BucketSampler& sampler);
  // Forward, loss and backward (times grad_scale) of this rank's rows of one micro-batch.
  virtual MicroStep micro_step(const std::vector<size_t>& rows, const core::StepOptions& opt, float grad_scale) = 0;
  // After the optimizer step.
  virtual void end_step(int64_t /*step*/) {}

  // The dev split's metrics: of the whole model (one row, sub_model 0; a method with sub-models is set to
  // its whole model first), or of each sub-model of the run's methods in the order they list them (none
  // when the run has none; the whole model is selected again afterwards).
  enum class Scope { whole_model, sub_models };
  std::vector<EvalRow> evaluate(Scope scope = Scope::whole_model);
  // How sub-models are named: the method and its unit ("dylora", "rank"); empty when the run has none.
  std::pair<std::string, std::string> sub_model_names() const;

  // Held around other HDF5 work (checkpoints) while the recipe reads a file on another thread.
  virtual std::unique_lock<std::mutex> hold_io() { return {}; }

  // Recipe state a checkpoint keeps beside the trainer's (none for today's recipes), by name.
  virtual std::map<std::string, std::vector<int64_t>> extra_state() const { return {}; }
  virtual void restore_extra_state(const std::map<std::string, std::vector<int64_t>>& /*state*/) {}

 protected:
  virtual void on_step_begin(int64_t /*step*/, const data::BucketSampler& /*sampler*/) {}
  virtual EvalResult evaluate_dev() = 0;
  RunModel& model_;
};

// The recipe the config asks for: from the activation stores with cache.use, else from tokenized rows.
std::unique_ptr<Recipe> make_recipe(const TrainConfig& cfg, RunModel& m, DataParallel& dp);

}  // namespace ladder::apps
