#pragma once
// Ladder Side-Tuning as a registry entry: its option table (lst_*) and the LstOptions they make. LST is not
// installed on the backbone like the other methods; it trains a side network through its own recipe
// (apps/train/lst_recipe.h), so it combines with no other method.
#include "adapters/lst/side_network.h"
#include "adapters/method_registry.h"

namespace ladder::adapters {

MethodInfo lst_method_info();
LstOptions lst_options(const MethodConfig& opt);

}  // namespace ladder::adapters
