#pragma once
// Prompt tuning (Lester et al. 2021): P trainable soft-token embeddings inserted at the backbone's
// prompt_position(); the backbone stays frozen. Rows start as the embeddings of P vocabulary tokens drawn
// with the run seed (the paper's "sampled vocabulary" init). Option: prompt_tokens.
#include "adapters/method_registry.h"

namespace ladder::adapters {

MethodInfo prompt_method_info();

}  // namespace ladder::adapters
