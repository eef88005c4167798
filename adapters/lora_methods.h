#pragma once
// LoRA and DyLoRA as methods: one LoraBranch (adapters/lora.h) beside each target Linear.
//   lora    options lora_r, lora_alpha, lora_dropout, lora_targets; mergeable; exports a PEFT LoRA adapter
//   dylora  the same branches trained at a rank b ~ Uniform{1..r_max} drawn every step from the step alone
//           (every process draws the same b); its sub-models are the ranks 1..r_max (evaluation and export
//           pick one); dylora_frozen: only the drawn rank's row/column learns (the paper code's default)
#include "adapters/method_registry.h"

namespace ladder::adapters {

MethodInfo lora_method_info();
MethodInfo dylora_method_info();

}  // namespace ladder::adapters
