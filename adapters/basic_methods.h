#pragma once
// The two methods that install nothing and only choose what trains:
//   full    every backbone parameter (the baseline)
//   bitfit  the bias terms only, LayerNorm biases included (Ben Zaken et al. 2022)
#include "adapters/method_registry.h"

namespace ladder::adapters {

MethodInfo full_method_info();
MethodInfo bitfit_method_info();

}  // namespace ladder::adapters
