#pragma once
// (IA)^3 (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
// Learning"): learned vectors that rescale activations. Attention keys and values are scaled per output
// feature (bias included), the FFN's second projection per input feature, as PEFT's IA3 does:
//   key/value:  y = (x W^T + b) * l        ffn_out:  y = (x * l) W^T + b
// Vectors start at 1 (the model is unchanged), fold into the weights for export, and export as a PEFT
// IA3 adapter. Installed on the Linear scale seam (core/modules/linear_scale.h).
#include "adapters/method_registry.h"

namespace ladder::adapters {

MethodInfo ia3_method_info();

}  // namespace ladder::adapters
