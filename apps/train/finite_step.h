#pragma once
// A training step whose loss or gradient is not finite (corrupt data, a diverging run) ends the run before
// the optimizer applies it, so the parameters, and every checkpoint written from them, stay finite.
// The happy path checks two scalars the step computes anyway (the reduced loss and the gradient norm);
// tensors are scanned only to name the culprit once a check has failed.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/modules/parameter.h"

namespace ladder::apps {

// Throws std::runtime_error naming the step, the value and, when the gradient norm is not finite, the first
// trainable parameter whose gradient holds a NaN or an infinity. `last_checkpoint` (may be empty) is named
// as the state a rerun would resume from. Every data-parallel rank sees the same reduced loss and norm, so
// every rank throws at the same step and none waits in a collective.
void check_step_finite(int64_t step, double loss, float grad_norm, const core::ParameterRegistry& params,
                       const std::string& last_checkpoint);

// The name of the first f32 tensor holding a NaN or an infinity; "" when every one is finite.
std::string first_nonfinite(const std::vector<std::pair<std::string, core::Tensor>>& tensors);

}  // namespace ladder::apps
