#include "data/glue/glue_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace ladder::data {

namespace {

// Where a task's text and label live: header names (every task but CoLA train/dev).
struct Columns {
  const char* a;
  const char* b;      // nullptr: single sentence
  const char* label;  // the gold column; absent from test files
};

Columns columns_for(GlueTask task) {
  switch (task) {
    case GlueTask::cola: return {"sentence", nullptr, "label"};  // only CoLA/test.tsv has a header
    case GlueTask::sst2: return {"sentence", nullptr, "label"};
    case GlueTask::mrpc: return {"#1 String", "#2 String", "Quality"};
    case GlueTask::qqp: return {"question1", "question2", "is_duplicate"};
    case GlueTask::stsb: return {"sentence1", "sentence2", "score"};
    case GlueTask::mnli: return {"sentence1", "sentence2", "gold_label"};
    case GlueTask::qnli: return {"question", "sentence", "label"};
    case GlueTask::rte: return {"sentence1", "sentence2", "label"};
    case GlueTask::wnli: return {"sentence1", "sentence2", "label"};
  }
  throw std::logic_error("unhandled GlueTask");
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return f;
    start = tab + 1;
  }
}

std::string where(const std::string& path, size_t lineno) { return path + ":" + std::to_string(lineno) + ": "; }

// Numeric-label tasks write "0"/"1"; MNLI/QNLI/RTE write the label name.
int parse_label(GlueTask task, const std::string& s, const std::string& at) {
  const auto& info = glue_task_info(task);
  if (task == GlueTask::mnli || task == GlueTask::qnli || task == GlueTask::rte) {
    for (size_t i = 0; i < info.label_names.size(); ++i)
      if (s == info.label_names[i]) return static_cast<int>(i);
    std::string valid;
    for (const auto& n : info.label_names) valid += (valid.empty() ? "" : ", ") + n;
    throw std::runtime_error(at + "unknown " + info.name + " label '" + s + "' (expected one of " + valid + ")");
  }
  if (s == "0") return 0;
  if (s == "1") return 1;
  throw std::runtime_error(at + "unknown " + info.name + " label '" + s + "' (expected 0 or 1)");
}

float parse_score(const std::string& s, const std::string& at) {
  errno = 0;
  char* end = nullptr;
  const float v = s.empty() ? 0.f : std::strtof(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
    throw std::runtime_error(at + "STS-B score '" + s + "' is not a number");
  if (v < 0.f || v > 5.f) throw std::runtime_error(at + "STS-B score " + s + " is outside [0, 5]");
  return v;
}

int find_column(const std::vector<std::string>& header, const char* name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

}  // namespace

std::vector<GlueExample> read_glue_tsv(GlueTask task, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open GLUE file");
  const auto& info = glue_task_info(task);
  const Columns names = columns_for(task);

  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  if (!lines.empty() && lines[0].compare(0, 3, "\xEF\xBB\xBF") == 0) lines[0].erase(0, 3);  // MRPC's BOM
  if (lines.empty()) throw std::runtime_error(path + ": empty " + info.dir_name + " file");

  // Column positions: CoLA train/dev are headerless, everything else is found by header name.
  int col_a = -1, col_b = -1, col_label = -1;
  size_t num_fields = 0, first_row = 0;
  const auto header = split_tabs(lines[0]);
  if (task == GlueTask::cola && header[0] != "index") {
    col_a = 3, col_label = 1, num_fields = 4;  // source, label, original mark, sentence
  } else {
    col_a = find_column(header, names.a);
    col_b = names.b ? find_column(header, names.b) : -1;
    col_label = find_column(header, names.label);
    if (col_a < 0 || (names.b && col_b < 0)) {
      std::string want = std::string("'") + names.a + "'" + (names.b ? std::string(", '") + names.b + "'" : "");
      throw std::runtime_error(where(path, 1) + "header '" + lines[0] + "' lacks column " + want + " of a " +
                               info.dir_name + " file (wrong task or not a GLUE file?)");
    }
    num_fields = header.size(), first_row = 1;
  }

  std::vector<GlueExample> out;
  out.reserve(lines.size());
  for (size_t i = first_row; i < lines.size(); ++i) {
    const std::string at = where(path, i + 1);
    if (lines[i].empty()) {
      if (i + 1 == lines.size()) break;  // a file ending in a blank line
      throw std::runtime_error(at + "empty line");
    }
    auto f = split_tabs(lines[i]);
    if (f.size() != num_fields)
      throw std::runtime_error(at + std::to_string(f.size()) + " tab-separated fields, expected " +
                               std::to_string(num_fields) + " for " + info.dir_name);
    GlueExample ex;
    ex.a = std::move(f[size_t(col_a)]);
    if (col_b >= 0) ex.b = std::move(f[size_t(col_b)]), ex.has_b = true;
    if (info.regression && col_label < 0) ex.score = std::nanf("");
    if (col_label >= 0) {
      if (info.regression) ex.score = parse_score(f[size_t(col_label)], at);
      else ex.label = parse_label(task, f[size_t(col_label)], at);
    }
    ex.idx = static_cast<int64_t>(out.size());
    out.push_back(std::move(ex));
  }
  return out;
}

}  // namespace ladder::data
