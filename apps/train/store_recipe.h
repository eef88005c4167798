#pragma once
// The recipe of side tuning from activation stores (cache.use): the frozen backbone's taps of every
// training and dev row were written once by `ladder cache`; each micro-batch reads its rows' taps (ahead,
// on a background thread) and runs only the side network and the head. The backbone's weights are
// released once the side network has taken its initialisation from them.
#include <memory>

#include "apps/train/recipe.h"

namespace ladder::apps {

std::unique_ptr<Recipe> make_store_recipe(const TrainConfig& cfg, RunModel& m, DataParallel& dp);

}  // namespace ladder::apps
