#include "apps/train/store_recipe.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "apps/train/activation_cache.h"
#include "apps/train/data_parallel.h"
#include "data/activation_store/store_reader.h"

namespace ladder::apps {

namespace {

class StoreRecipe : public Recipe {
 public:
  StoreRecipe(const TrainConfig& cfg, RunModel& m, DataParallel& dp) : Recipe(m), cfg_(cfg), dp_(dp) {
    if (!m.side) throw std::runtime_error("cache.use trains a side network from activation stores; method '" + cfg.method + "' has none");
    train_ = std::make_unique<data::ActivationStoreReader>(store_path(cfg, "train"));
    dev_ = std::make_unique<data::ActivationStoreReader>(store_path(cfg, "dev"));
    train_->check_matches(store_expectation(cfg, m, "train"));
    dev_->check_matches(store_expectation(cfg, m, "dev"));
    for (int t : m.side->taps()) layers_.push_back(t);
    lengths_ = train_->row_lengths();
    // The backbone never runs from here on.
    m.backbone->params().release_frozen_values();
  }

  std::string describe() const override {
    return "training from the activation stores " + train_->path() + " and " + dev_->path() + " (the backbone does not run)";
  }
  std::string task_name() const override { return data::glue_task_info(model_.task).name; }
  std::string primary_metric() const override { return data::glue_task_info(model_.task).primary_metric; }
  const std::vector<int64_t>& train_lengths() const override { return lengths_; }
  size_t dev_rows() const override { return dev_->num_rows(); }

  MicroStep micro_step(const std::vector<size_t>& rows, const core::StepOptions& opt, float grad_scale) override {
    std::optional<data::StoreBatch> sb = prefetch_->next();  // its hidden states are the taps until backward is done
    if (!sb || sb->rows.size() != rows.size() || !std::equal(rows.begin(), rows.end(), sb->rows.begin()))
      throw std::logic_error("activation store prefetch is out of step with the sampler");
    model_forward_taps(model_, sb->tokens.view(), opt, store_taps(*sb));
    const int32_t* lp = sb->labels.empty() ? nullptr : sb->labels.data();
    const float* sp = sb->scores.empty() ? nullptr : sb->scores.data();
    MicroStep r;
    r.loss = model_.head->loss(lp, sp);
    r.tokens = sb->tokens.real_tokens();
    model_backward(model_, lp, sp, grad_scale);
    return r;
  }

  std::unique_lock<std::mutex> hold_io() override { return prefetch_ ? prefetch_->hold_hdf5() : std::unique_lock<std::mutex>(); }

 protected:
  void on_step_begin(int64_t /*step*/, const data::BucketSampler& sampler) override {
    const int64_t epoch = sampler.state().epoch;
    if (prefetch_ && prefetch_epoch_ == epoch) return;
    // This rank's micro-batches from here to the epoch's end, read ahead on a background thread.
    prefetch_.reset();
    const auto gbs = sampler.epoch_batches(epoch);
    std::vector<std::vector<uint64_t>> plan;
    for (size_t g = size_t(sampler.state().position - 1); g < gbs.size(); ++g)
      for (int m = 0; m < cfg_.grad_accum; ++m) {
        plan.emplace_back();
        for (size_t p : dp_.slice(size_t(m), size_t(cfg_.batch_size))) plan.back().push_back(uint64_t(gbs[g][p]));
      }
    // 16-bit stores stay 16-bit until the side network's ladders convert them, a chunk at a time.
    prefetch_ = std::make_unique<data::PrefetchingReader>(*train_, std::move(plan), layers_, 2, /*keep_16bit=*/true);
    prefetch_epoch_ = epoch;
  }

  EvalResult evaluate_dev() override {
    // A side network saves so little for backward that a larger evaluation batch would set the run's
    // peak memory: it evaluates at most a training batch at a time.
    auto hold = hold_io();
    return evaluate_from_store(model_, *dev_, model_.task, std::min(cfg_.eval_batch_size, cfg_.batch_size));
  }

 private:
  const TrainConfig& cfg_;
  DataParallel& dp_;
  std::unique_ptr<data::ActivationStoreReader> train_, dev_;
  std::vector<int64_t> layers_;
  std::vector<int64_t> lengths_;
  // Declared after the readers: destroyed (its thread joined) before them.
  std::unique_ptr<data::PrefetchingReader> prefetch_;
  int64_t prefetch_epoch_ = -1;
};

}  // namespace

std::unique_ptr<Recipe> make_store_recipe(const TrainConfig& cfg, RunModel& m, DataParallel& dp) {
  return std::make_unique<StoreRecipe>(cfg, m, dp);
}

}  // namespace ladder::apps
