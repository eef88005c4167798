#pragma once
// Method targets by role ("query", "value", "qkv", "attention_output", "ffn_in", "ffn_out") resolved on any
// backbone through its layer seams: "qkv" is a fused projection where the backbone has one (GPT-2's c_attn)
// and query + key + value where it has three.
#include <string>
#include <utility>
#include <vector>

#include "core/backbones/backbone.h"

namespace ladder::adapters {

// The Linears of every layer whose role is among `targets`, in layer order, with their module names.
// An unknown target, or one this backbone does not have (GPT-2 has no separate key), is an error naming
// the backbone and listing its targets.
std::vector<std::pair<std::string, core::Linear*>> select_linears(core::Backbone& backbone,
                                                                  const std::vector<std::string>& targets);

}  // namespace ladder::adapters
