#include "data/glue/glue_dataset.h"

namespace ladder::data {

std::vector<int64_t> GlueSplit::lengths() const {
  std::vector<int64_t> out;
  out.reserve(enc.size());
  for (auto& e : enc) out.push_back(int64_t(e.input_ids.size()));
  return out;
}

GlueSplit tokenize_glue(GlueTask task, const std::vector<GlueExample>& rows, const TextEncoder& tok, int max_len,
                        int max_examples) {
  const size_t n = max_examples > 0 ? std::min(rows.size(), size_t(max_examples)) : rows.size();
  GlueSplit s;
  s.task = task;
  s.enc.resize(n);
  s.labels.resize(n);
  s.scores.resize(n);
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t i = 0; i < n; ++i) {
    const GlueExample& r = rows[i];
    s.enc[i] = tok.encode(r.a, r.has_b ? &r.b : nullptr, max_len);
    s.labels[i] = r.label;
    s.scores[i] = r.score;
  }
  return s;
}

}  // namespace ladder::data
