#pragma once
// Plain-text inputs for `ladder encode`: one text, or a tab-separated pair, per line; or chosen columns
// of a TSV file (e.g. GLUE's SST-2 `sentence` column). Fields are split on tabs only, with no quote
// handling (GLUE's convention). A line without the requested columns is an error naming file and line.
#include <string>
#include <vector>

namespace ladder::data {

struct TextRow {
  std::string a, b;
  bool has_b = false;
};

// columns: empty = the whole line is text a, unless it has a tab, in which case the two fields are a pair;
// one index = text a from that column; two indices = a pair. header = skip the first line.
// A UTF-8 BOM and CR line endings are stripped; empty lines are errors (they would shift row order).
std::vector<TextRow> read_text_rows(const std::string& path, const std::vector<int>& columns, bool header);

}  // namespace ladder::data
