#pragma once
// The nine GLUE tasks and what a trainer needs to know about each: the directory download_glue_data.py
// writes it to, how many outputs the head has, the label names (in Hugging Face `datasets` glue order,
// which is also AdvGLUE's), the metric GLUE reports first, and the dev files to evaluate on.
#include <string>
#include <vector>

namespace ladder::data {

enum class GlueTask { cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli };

struct GlueTaskInfo {
  std::string name;                      // "sst2"
  std::string dir_name;                  // "SST-2", as in glue_data/
  int num_labels = 2;                    // 1 for STS-B (regression)
  bool regression = false;
  std::vector<std::string> label_names;  // label id -> name; empty for STS-B
  std::string primary_metric;            // a key of glue_metrics(): "mcc", "accuracy", "f1" or "pearson"
  std::vector<std::string> dev_files;    // "dev.tsv"; MNLI: "dev_matched.tsv", "dev_mismatched.tsv"
};

// Case-insensitive, ignores '-' and '_': "sst2", "SST-2", "sts_b", "MNLI" all parse. An unknown name is
// std::invalid_argument listing the valid names.
GlueTask parse_glue_task(const std::string& name);
const GlueTaskInfo& glue_task_info(GlueTask task);
const std::vector<GlueTask>& all_glue_tasks();

}  // namespace ladder::data
