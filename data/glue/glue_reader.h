#pragma once
// GLUE TSV files exactly as download_glue_data.py writes them (train, dev, dev_matched/mismatched, test).
// Fields are split on '\t' only, with no quote handling (GLUE text holds literal '"'). Where a file has
// a header, columns are found by name and the header is checked; CoLA train/dev have none (source, label,
// mark, sentence). A file whose header lacks the label column (the test files) reads with label -1.
// Labels are ids in glue_task_info(task).label_names order (MNLI: entailment 0, neutral 1,
// contradiction 2). A malformed row (field count, unknown label, bad or out-of-range STS-B score,
// empty line) is std::runtime_error naming "path:LINE" and the problem.
#include <cstdint>
#include <string>
#include <vector>

#include "data/glue/glue_task.h"

namespace ladder::data {

struct GlueExample {
  std::string a, b;     // sentence (pair)
  bool has_b = false;
  int label = -1;       // class id; -1 when unlabeled (and always for STS-B)
  float score = 0.f;    // STS-B similarity in [0, 5]; NaN for an unlabeled STS-B row; 0 for other tasks
  int64_t idx = 0;      // 0-based data row in the file (TSV) or the "idx" field (AdvGLUE)
};

std::vector<GlueExample> read_glue_tsv(GlueTask task, const std::string& path);

}  // namespace ladder::data
