#pragma once
// The method tests' whole-model gradient check: every trainable parameter's gradient against a directional
// finite difference through the backbone in training mode (dropout on, the same masks in every forward),
// for loss = sum(last_hidden * R) with a fixed random R.
#include <cstdint>
#include <string>
#include <vector>

#include "core/backbones/backbone.h"

namespace ladder::test {

// Checks every trainable parameter except those whose name starts with one of `skip` (parameters the loss
// does not reach, e.g. BERT's pooler); each must get a non-zero gradient, and frozen parameters no gradient
// buffer. `seed` draws R, `dropout_seed` the masks. Returns how many parameters were checked.
size_t check_model_gradients(core::Backbone& m, unsigned seed, uint64_t dropout_seed,
                             const std::vector<std::string>& skip = {});

}  // namespace ladder::test
