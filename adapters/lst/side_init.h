#pragma once
// Initial weights of a Ladder Side-Tuning side network cut from the frozen BERT backbone by one-shot
// structured pruning, as LST's `pruning_without_residual` (version 2) does for T5 (METHODS.md §1.2):
// walking each layer's groups in order — [query, key, value] jointly, attention output, intermediate,
// output — first drop the input columns the previous group pruned, then keep the 1/r output rows with the
// largest L1 norm of the (element-wise product of the group members') importances. LayerNorms take the
// rows of the group before them. The first group's inputs are the embedding channels with the largest
// L1 importance. Indices are chosen per group, so the kept "residual" channels differ between layers:
// the result is an initialisation, not an exact sub-network.
// Importance: |W| (magnitude, LST's "t5-base" option) or a Fisher estimate sum_n (dL_n/dW)^2 that the
// caller accumulates over N single-example backward passes (LST's "fisher-v2").
#include <map>
#include <string>
#include <vector>

#include "core/backbones/backbone.h"

namespace ladder::adapters {

// Importance per backbone parameter name (same shape as the parameter, f32). Missing names: magnitude.
using ImportanceMap = std::map<std::string, std::vector<float>>;

// The pruned values of every backbone layer's side counterpart, per layer, keyed by the BERT sub-name
// ("attention.self.query.weight", ..., "output.LayerNorm.bias"), shaped for a side layer of width C/r
// and FFN F/r (heads unchanged); [out, in] layouts as in the backbone. BERT only.
std::vector<std::map<std::string, std::vector<float>>> pruned_side_layers(core::Backbone& backbone, int reduction,
                                                                          const ImportanceMap& importance);

// The backbone parameters whose importance the pruning reads, in layer order: the word embeddings and each
// layer's query, key, value, attention output, intermediate and output weights. Biases and LayerNorms are
// only gathered by the rows their group kept. BERT only (throws otherwise).
std::vector<std::string> pruning_importance_names(const core::Backbone& backbone);

// Indices of the embedding channels kept (the first group's input columns), ascending.
std::vector<int> kept_embedding_channels(core::Backbone& backbone, int reduction, const ImportanceMap& importance);

}  // namespace ladder::adapters
