#pragma once
// AdvGLUE (Wang et al., 2021) dev.json: one object whose keys sst2, qqp, mnli, mnli-mm, qnli, rte each
// hold a list of {GLUE text fields..., "label", "idx"}. Text fields per key: sst2 sentence; qqp
// question1/question2; mnli and mnli-mm premise/hypothesis; qnli question/sentence; rte
// sentence1/sentence2. Labels use the Hugging Face glue ids (MNLI: entailment 0, neutral 1,
// contradiction 2), the same as read_glue_tsv. An unknown key, a missing field or an out-of-range
// label is std::runtime_error naming the file, the key and the list index.
#include <string>
#include <vector>

#include "data/glue/glue_reader.h"
#include "data/glue/glue_task.h"

namespace ladder::data {

// The GLUE task an AdvGLUE key is an adversarial dev set for ("mnli-mm" -> mnli).
GlueTask advglue_task(const std::string& key);
std::vector<GlueExample> read_advglue(const std::string& path, const std::string& key);

}  // namespace ladder::data
