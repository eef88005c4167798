// read_text_rows: plain lines, tab pairs, --columns with a header (on the real GLUE SST-2 dev set),
// BOM and CRLF handling, and the errors that name "path:LINE".
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "data/text_rows.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using ladder::data::read_text_rows;
using ladder::data::TextRow;

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = ladder::test::temp_dir("text_rows_" + name) + "/" + name + ".txt";
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
}

TEST(TextRows, PlainLines) {
  const auto path = write_file("plain", "hello world\nsecond line\n  spaced  \nlast");
  auto rows = read_text_rows(path, {}, false);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].a, "hello world");
  EXPECT_FALSE(rows[0].has_b);
  EXPECT_EQ(rows[0].b, "");
  EXPECT_EQ(rows[1].a, "second line");
  EXPECT_EQ(rows[2].a, "  spaced  ");  // kept verbatim: the tokenizer handles whitespace
  EXPECT_EQ(rows[3].a, "last");          // no trailing newline is fine too
}

TEST(TextRows, TabPairsMixedWithSingles) {
  const auto path = write_file("pairs", "a man is dancing\ta person dances\nsingle text\nq\t\n");
  auto rows = read_text_rows(path, {}, false);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(rows[0].has_b);
  EXPECT_EQ(rows[0].a, "a man is dancing");
  EXPECT_EQ(rows[0].b, "a person dances");
  EXPECT_FALSE(rows[1].has_b);
  EXPECT_EQ(rows[1].a, "single text");
  EXPECT_TRUE(rows[2].has_b);  // an empty second field is still a pair
  EXPECT_EQ(rows[2].a, "q");
  EXPECT_EQ(rows[2].b, "");
}

TEST(TextRows, HeaderSkipsFirstLine) {
  const auto path = write_file("header", "sentence\nfirst\nsecond\n");
  auto rows = read_text_rows(path, {}, true);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].a, "first");
  EXPECT_EQ(rows[1].a, "second");
  EXPECT_EQ(read_text_rows(path, {}, false).size(), 3u);
}

TEST(TextRows, ColumnsSelectFieldsInGivenOrder) {
  const auto path = write_file("columns", "id\ts1\ts2\tscore\n7\tone\ttwo\t0.5\n8\tthree\tfour\t1.0\n");
  auto single = read_text_rows(path, {2}, true);
  ASSERT_EQ(single.size(), 2u);
  EXPECT_EQ(single[0].a, "two");
  EXPECT_FALSE(single[0].has_b);
  EXPECT_EQ(single[1].a, "four");
  auto pair = read_text_rows(path, {2, 1}, true);
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_TRUE(pair[1].has_b);
  EXPECT_EQ(pair[1].a, "four");
  EXPECT_EQ(pair[1].b, "three");
  EXPECT_THROW(read_text_rows(path, {0, 1, 2}, true), std::invalid_argument);
  EXPECT_THROW(read_text_rows(path, {-1}, true), std::invalid_argument);
}

TEST(TextRows, RealSst2DevSentenceColumn) {
  const std::string path = ladder::test::shared_dir() + "/data/glue/SST-2/dev.tsv";
  ASSERT_TRUE(ladder::test::file_exists(path)) << path;
  auto rows = read_text_rows(path, {0}, true);
  ASSERT_EQ(rows.size(), 872u);
  EXPECT_EQ(rows[0].a.rfind("it 's a charming", 0), 0u) << rows[0].a;
  EXPECT_FALSE(rows[0].has_b);
  EXPECT_EQ(rows[1].a.rfind("unflinchingly bleak and desperate", 0), 0u) << rows[1].a;
  for (const auto& r : rows) {
    ASSERT_FALSE(r.a.empty());
    ASSERT_EQ(r.a.find('\t'), std::string::npos);
    ASSERT_EQ(r.a.find('\r'), std::string::npos);
  }
  // Both columns as a "pair": the second is the label.
  auto pairs = read_text_rows(path, {0, 1}, true);
  ASSERT_EQ(pairs.size(), 872u);
  EXPECT_EQ(pairs[0].b, "1");
  EXPECT_EQ(pairs[1].b, "0");
  // Column 2 does not exist: the first data line (line 2) is named.
  expect_error([&] { read_text_rows(path, {2}, true); }, {path + ":2:", "column 2"});
}

TEST(TextRows, Utf8BomIsStripped) {
  const auto path = write_file("bom", "\xEF\xBB\xBFhello\n\xEF\xBB\xBFnot a bom here\n");
  auto rows = read_text_rows(path, {}, false);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].a, "hello");
  EXPECT_EQ(rows[1].a, "\xEF\xBB\xBFnot a bom here");  // only the file's first bytes are a BOM
  // With a header the BOM belongs to the header line, and the columns still line up.
  const auto tsv = write_file("bom_tsv", "\xEF\xBB\xBFsentence\tlabel\nfine\t1\n");
  auto r2 = read_text_rows(tsv, {0}, true);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].a, "fine");
  const auto nohdr = write_file("bom_nohdr", "\xEF\xBB\xBF" "first\t1\n");
  EXPECT_EQ(read_text_rows(nohdr, {0}, false)[0].a, "first");
}

TEST(TextRows, CrlfIsStripped) {
  const auto path = write_file("crlf", "sentence\tlabel\r\ngood movie\t1\r\nbad movie\t0\r\n");
  auto rows = read_text_rows(path, {0, 1}, true);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].a, "good movie");
  EXPECT_EQ(rows[0].b, "1");  // no '\r' left on the last field
  EXPECT_EQ(rows[1].b, "0");
  auto plain = read_text_rows(write_file("crlf_plain", "one\r\ntwo\r\n"), {}, false);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[1].a, "two");
}

TEST(TextRows, MissingColumnNamesPathAndLine) {
  const auto path = write_file("missing_col", "a\tb\nx\ty\nonly-one-field\nz\tw\n");
  expect_error([&] { read_text_rows(path, {1}, true); }, {path + ":3:", "column 1"});
  expect_error([&] { read_text_rows(path, {0, 1}, false); }, {path + ":3:"});
}

TEST(TextRows, ThreeFieldsWithoutColumnsIsAnError) {
  const auto path = write_file("three", "one\ntwo\tpair\nx\ty\tz\n");
  expect_error([&] { read_text_rows(path, {}, false); }, {path + ":3:", "3 tab-separated fields", "--columns"});
  EXPECT_EQ(read_text_rows(path, {0}, false).size(), 3u);  // with --columns the extra fields are fine
}

TEST(TextRows, EmptyLineInTheMiddleIsAnError) {
  const auto path = write_file("empty_mid", "one\ntwo\n\nthree\n");
  expect_error([&] { read_text_rows(path, {}, false); }, {path + ":3:", "empty line"});
  const auto crlf = write_file("empty_mid_crlf", "one\r\n\r\ntwo\r\n");
  expect_error([&] { read_text_rows(crlf, {}, false); }, {crlf + ":2:", "empty line"});
  const auto two = write_file("empty_two_trailing", "one\n\n\n");
  expect_error([&] { read_text_rows(two, {}, false); }, {two + ":2:"});
}

TEST(TextRows, TrailingNewlineIsNotARow) {
  EXPECT_EQ(read_text_rows(write_file("trailing", "one\ntwo\n"), {}, false).size(), 2u);
  EXPECT_EQ(read_text_rows(write_file("trailing_crlf", "one\r\ntwo\r\n"), {}, false).size(), 2u);
  EXPECT_EQ(read_text_rows(write_file("no_trailing", "one\ntwo"), {}, false).size(), 2u);
  EXPECT_TRUE(read_text_rows(write_file("empty_file", ""), {}, false).empty());
}

TEST(TextRows, MissingFileNamesPath) {
  const std::string path = ladder::test::temp_dir("text_rows_missing") + "/absent.tsv";
  expect_error([&] { read_text_rows(path, {}, false); }, {path});
}

}  // namespace
