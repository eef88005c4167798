#pragma once
// Ladder Side-Tuning's Fisher importance for the pruned side-network initialisation (method.lst_init =
// fisher; METHODS.md §1.2, LST's fisher.py): F[p] = sum_{n=1..N} (dL_n/dp)^2 per element, where L_n is the
// task loss (cross-entropy, or MSE for regression) of ONE training example through the frozen backbone and a
// task head. Per-example gradients are what the definition squares, so the examples run one at a time
// (batch size 1); the backbone runs without dropout so that F is a pure function of the examples.
#include <string>
#include <vector>

#include "adapters/heads/sequence_classification_head.h"
#include "adapters/lst/side_init.h"
#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "core/backbones/backbone.h"
#include "data/glue/glue_dataset.h"

namespace ladder::apps {

// F over `examples` in order, for the frozen backbone parameters `names` (each the parameter's shape, f32),
// with the loss of `head` on `backbone`. The parameters are made trainable for the pass and then restored:
// afterwards every parameter holds its original value tensor (memory maps included, so frozen memory does
// not grow), the trainable set is as before and the gradient buffer is re-allocated (zero) for that set
// alone. Errors: no examples, an unknown name, or a name that is already trainable.
adapters::ImportanceMap fisher_importance(core::Backbone& backbone, adapters::SequenceClassificationHead& head,
                                          const data::GlueSplit& examples, const std::vector<std::string>& names);

// The run's importance for method.lst_init = fisher: method.lst_fisher_samples training examples (all when
// the split has fewer) drawn shuffled with the run seed from the task's training split (its first
// task.max_train_examples rows when set), tokenized as the run tokenizes them. The pass runs on a scratch
// copy of the backbone with a freshly initialised task head seeded like the run's (a BERT encoder has no
// pretrained task head), so `m` is left untouched; the memory tracker's peaks are reset afterwards so that
// the run's memory table describes training (the pass's own peak is printed). Rank 0 prints
// "LST Fisher importance: N examples in X s".
adapters::ImportanceMap lst_fisher_importance(const TrainConfig& cfg, const RunModel& m);

}  // namespace ladder::apps
