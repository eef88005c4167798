#include "apps/train/glue_recipe.h"

#include <algorithm>

#include "data/padded_batch.h"
#include "data/text_encoder.h"

namespace ladder::apps {

namespace {

class GlueRecipe : public Recipe {
 public:
  GlueRecipe(const TrainConfig& cfg, RunModel& m) : Recipe(m), cfg_(cfg) {
    load_glue_splits(cfg, m, true, train_, dev_);
    lengths_ = train_.lengths();
    pad_ = data::TextEncoder::for_model(cfg.model_dir, m.backbone->config().arch).pad_id();
  }

  std::string task_name() const override { return data::glue_task_info(model_.task).name; }
  std::string primary_metric() const override { return data::glue_task_info(model_.task).primary_metric; }
  const std::vector<int64_t>& train_lengths() const override { return lengths_; }
  size_t dev_rows() const override { return dev_.size(); }

  MicroStep micro_step(const std::vector<size_t>& rows, const core::StepOptions& opt, float grad_scale) override {
    data::pad_batch(batch_, train_.enc, rows, pad_, model_.pad_to);
    labels_.clear();
    scores_.clear();
    for (size_t i : rows) {
      labels_.push_back(train_.labels[i]);
      scores_.push_back(train_.scores[i]);
    }
    model_forward(model_, batch_.view(), opt);
    const int32_t* lp = labels_.empty() ? nullptr : labels_.data();
    const float* sp = scores_.empty() ? nullptr : scores_.data();
    MicroStep r;
    r.loss = model_.head->loss(lp, sp);
    r.tokens = batch_.real_tokens();
    model_backward(model_, lp, sp, grad_scale);
    return r;
  }

 protected:
  EvalResult evaluate_dev() override {
    // A side network saves so little for backward that a larger evaluation batch would set the run's
    // peak memory: it evaluates at most a training batch at a time.
    const int batch = model_.side ? std::min(cfg_.eval_batch_size, cfg_.batch_size) : cfg_.eval_batch_size;
    return apps::evaluate(model_, dev_, batch, pad_);
  }

 private:
  const TrainConfig& cfg_;
  data::GlueSplit train_, dev_;
  std::vector<int64_t> lengths_;
  int32_t pad_ = 0;
  data::PaddedBatch batch_;
  std::vector<int32_t> labels_;
  std::vector<float> scores_;
};

}  // namespace

std::unique_ptr<Recipe> make_glue_recipe(const TrainConfig& cfg, RunModel& m) { return std::make_unique<GlueRecipe>(cfg, m); }

}  // namespace ladder::apps
