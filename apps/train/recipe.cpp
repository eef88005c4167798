#include "apps/train/recipe.h"

#include "apps/train/glue_recipe.h"
#include "apps/train/lm_recipe.h"
#include "apps/train/store_recipe.h"

namespace ladder::apps {

void Recipe::begin_step(int64_t step, const data::BucketSampler& sampler) {
  for (auto& m : model_.methods) m->on_step_begin(uint64_t(step));
  on_step_begin(step, sampler);
}

std::vector<EvalRow> Recipe::evaluate(Scope scope) {
  adapters::Method* sm = adapters::sub_model_method(model_.methods);
  std::vector<EvalRow> rows;
  if (scope == Scope::whole_model) {
    // A method training sub-models evaluates, and selects its best checkpoint, as the whole model, not
    // the sub-model the last step drew.
    if (sm) sm->select_sub_model(0);
    rows.push_back({0, evaluate_dev()});
    return rows;
  }
  if (!sm) return rows;
  for (int b : sm->sub_models().sizes) {
    sm->select_sub_model(b);
    rows.push_back({b, evaluate_dev()});
  }
  sm->select_sub_model(0);
  return rows;
}

std::pair<std::string, std::string> Recipe::sub_model_names() const {
  adapters::Method* sm = adapters::sub_model_method(model_.methods);
  if (!sm) return {};
  return {sm->name(), sm->sub_models().unit};
}

std::unique_ptr<Recipe> make_recipe(const TrainConfig& cfg, RunModel& m, DataParallel& dp) {
  if (cfg.cache_use) return make_store_recipe(cfg, m, dp);
  if (cfg.task == "lm") return make_lm_recipe(cfg, m);
  return make_glue_recipe(cfg, m);
}

}  // namespace ladder::apps
