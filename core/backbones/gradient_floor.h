#pragma once
// How far down a backward pass must go: the lowest layer holding a trainable parameter (-1 when an
// embedding parameter is trainable, `layers` when only parameters above the stack are). Layers below the
// floor keep no activations and backward stops at the floor, so a frozen backbone under a trainable
// head or upper-layer adapters costs no activation memory for its lower layers.
#include <string>

#include "core/modules/parameter.h"

namespace ladder::core {

// layer_prefix is the dotted prefix before the layer index ("encoder.layer." for BERT, "h." for GPT-2);
// names starting with embedding_prefixes are layer -1; every other name is above the stack.
int gradient_floor(const ParameterRegistry& params, const std::string& layer_prefix,
                   const std::vector<std::string>& embedding_prefixes, int layers);

}  // namespace ladder::core
