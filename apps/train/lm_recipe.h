#pragma once
// The causal language-modelling recipe (task.name lm) for decoders: plain text (the whole file tokenized
// as one stream and cut into task.max_length blocks, every next token a target) or prompt/response pairs
// (one example per line, the loss on the response tokens only). The dev metric is the perplexity of
// task.eval_text: exp of the mean next-token loss over the counted tokens.
#include <memory>

#include "apps/train/recipe.h"

namespace ladder::apps {

std::unique_ptr<Recipe> make_lm_recipe(const TrainConfig& cfg, RunModel& m);

}  // namespace ladder::apps
