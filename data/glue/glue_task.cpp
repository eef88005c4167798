#include "data/glue/glue_task.h"

#include <cctype>
#include <stdexcept>

namespace ladder::data {

// Label orders follow Hugging Face `datasets` glue (ClassLabel names), so label ids agree with HF
// checkpoints and with AdvGLUE's dev.json. Note MNLI: entailment=0, neutral=1, contradiction=2.
static const std::vector<GlueTaskInfo>& task_table() {
  static const std::vector<GlueTaskInfo> table = {
      {"cola", "CoLA", 2, false, {"unacceptable", "acceptable"}, "mcc", {"dev.tsv"}},
      {"sst2", "SST-2", 2, false, {"negative", "positive"}, "accuracy", {"dev.tsv"}},
      {"mrpc", "MRPC", 2, false, {"not_equivalent", "equivalent"}, "f1", {"dev.tsv"}},
      {"qqp", "QQP", 2, false, {"not_duplicate", "duplicate"}, "f1", {"dev.tsv"}},
      {"stsb", "STS-B", 1, true, {}, "pearson", {"dev.tsv"}},
      {"mnli", "MNLI", 3, false, {"entailment", "neutral", "contradiction"}, "accuracy",
       {"dev_matched.tsv", "dev_mismatched.tsv"}},
      {"qnli", "QNLI", 2, false, {"entailment", "not_entailment"}, "accuracy", {"dev.tsv"}},
      {"rte", "RTE", 2, false, {"entailment", "not_entailment"}, "accuracy", {"dev.tsv"}},
      {"wnli", "WNLI", 2, false, {"not_entailment", "entailment"}, "accuracy", {"dev.tsv"}},
  };
  return table;
}

const std::vector<GlueTask>& all_glue_tasks() {
  static const std::vector<GlueTask> tasks = {GlueTask::cola, GlueTask::sst2, GlueTask::mrpc,
                                              GlueTask::qqp,  GlueTask::stsb, GlueTask::mnli,
                                              GlueTask::qnli, GlueTask::rte,  GlueTask::wnli};
  return tasks;
}

const GlueTaskInfo& glue_task_info(GlueTask task) { return task_table().at(static_cast<size_t>(task)); }

GlueTask parse_glue_task(const std::string& name) {
  std::string key;
  for (char c : name)
    if (c != '-' && c != '_') key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (GlueTask t : all_glue_tasks())
    if (glue_task_info(t).name == key) return t;
  std::string valid;
  for (GlueTask t : all_glue_tasks()) valid += (valid.empty() ? "" : ", ") + glue_task_info(t).name;
  throw std::invalid_argument("unknown GLUE task '" + name + "'; valid tasks: " + valid);
}

}  // namespace ladder::data
