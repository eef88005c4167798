#include "data/text_rows.h"

#include <fstream>
#include <stdexcept>

namespace ladder::data {

static std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return f;
}

std::vector<TextRow> read_text_rows(const std::string& path, const std::vector<int>& columns, bool header) {
  if (columns.size() > 2) throw std::invalid_argument("at most two text columns (a sentence pair) can be encoded");
  for (int c : columns)
    if (c < 0) throw std::invalid_argument("column indices are 0-based and non-negative");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open input");
  std::vector<TextRow> rows;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (header && lineno == 1) continue;
    if (line.empty()) {
      if (in.peek() == EOF) break;  // a trailing newline is not a row
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": empty line");
    }
    TextRow r;
    auto f = split_tabs(line);
    if (columns.empty()) {
      if (f.size() > 2)
        throw std::runtime_error(path + ":" + std::to_string(lineno) + ": " + std::to_string(f.size()) +
                                 " tab-separated fields; expected one text or a pair (use --columns to pick)");
      r.a = f[0];
      if (f.size() == 2) {
        r.b = f[1];
        r.has_b = true;
      }
    } else {
      for (int c : columns)
        if (size_t(c) >= f.size())
          throw std::runtime_error(path + ":" + std::to_string(lineno) + ": has " + std::to_string(f.size()) +
                                   " fields, column " + std::to_string(c) + " requested");
      r.a = f[size_t(columns[0])];
      if (columns.size() == 2) {
        r.b = f[size_t(columns[1])];
        r.has_b = true;
      }
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace ladder::data
