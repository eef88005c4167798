#pragma once
// The recipe of every method on tokenized GLUE rows: the task's train and dev splits are read and
// tokenized up front; each micro-batch is padded, run through the model (the backbone, a side network
// when the method has one, the head) and back.
#include <memory>

#include "apps/train/recipe.h"

namespace ladder::apps {

std::unique_ptr<Recipe> make_glue_recipe(const TrainConfig& cfg, RunModel& m);

}  // namespace ladder::apps
