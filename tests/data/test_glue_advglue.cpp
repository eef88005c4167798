// AdvGLUE dev.json reader on a small file in the published layout: every key, field mapping, label ids,
// and the errors that name file, key and index.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <string>

#include "data/glue/advglue.h"
#include "tests/support/tiny_models.h"

namespace {

using namespace ladder::data;

const char* kDev = R"({
  "sst2": [{"sentence": "it 's a uniquely sad experience .", "label": 0, "idx": 0},
           {"sentence": "a funny film .", "label": 1, "idx": 7}],
  "qqp": [{"question1": "Why is the sky blue?", "question2": "What makes the sky blue?", "label": 1, "idx": 3}],
  "mnli": [{"premise": "The cat sat.", "hypothesis": "A cat is sitting.", "label": 0, "idx": 11},
           {"premise": "The cat sat.", "hypothesis": "No cat exists.", "label": 2, "idx": 12}],
  "mnli-mm": [{"premise": "P", "hypothesis": "H", "label": 1, "idx": 5}],
  "qnli": [{"question": "Who?", "sentence": "Him.", "label": 1, "idx": 2}],
  "rte": [{"sentence1": "A \"quoted\" text.", "sentence2": "B.", "label": 0, "idx": 9}]
})";

std::string write_json(const std::string& name, const std::string& content) {
  const std::string path = ladder::test::temp_dir("advglue_" + name) + "/dev.json";
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

TEST(AdvGlue, ReadsEveryKey) {
  const auto path = write_json("ok", kDev);
  auto sst = read_advglue(path, "sst2");
  ASSERT_EQ(sst.size(), 2u);
  EXPECT_EQ(sst[0].a, "it 's a uniquely sad experience .");
  EXPECT_FALSE(sst[0].has_b);
  EXPECT_EQ(sst[1].label, 1);
  EXPECT_EQ(sst[1].idx, 7);
  auto qqp = read_advglue(path, "qqp");
  ASSERT_EQ(qqp.size(), 1u);
  EXPECT_EQ(qqp[0].a, "Why is the sky blue?");
  EXPECT_EQ(qqp[0].b, "What makes the sky blue?");
  EXPECT_TRUE(qqp[0].has_b);
  auto mnli = read_advglue(path, "mnli");
  ASSERT_EQ(mnli.size(), 2u);
  EXPECT_EQ(mnli[1].b, "No cat exists.");
  EXPECT_EQ(mnli[1].label, 2);  // contradiction in HF order
  auto mm = read_advglue(path, "mnli-mm");
  ASSERT_EQ(mm.size(), 1u);
  EXPECT_EQ(mm[0].label, 1);
  auto qnli = read_advglue(path, "qnli");
  EXPECT_EQ(qnli[0].a, "Who?");
  EXPECT_EQ(qnli[0].b, "Him.");
  auto rte = read_advglue(path, "rte");
  EXPECT_EQ(rte[0].a, "A \"quoted\" text.");
  EXPECT_EQ(rte[0].idx, 9);
  EXPECT_EQ(advglue_task("mnli-mm"), GlueTask::mnli);
  EXPECT_EQ(advglue_task("qqp"), GlueTask::qqp);
}

TEST(AdvGlue, Errors) {
  const auto path = write_json("bad", R"({"sst2": [{"sentence": "ok", "label": 1, "idx": 0}, {"text": "x", "label": 0, "idx": 1}],
    "rte": [{"sentence1": "a", "sentence2": "b", "label": 3, "idx": 0}],
    "qqp": [{"question1": "a", "question2": "b", "idx": 4}]})");
  expect_error([&] { read_advglue(path, "cola"); }, {path, "unknown AdvGLUE key 'cola'", "sst2", "mnli-mm"});
  expect_error([&] { read_advglue(path, "sst2"); }, {path, "sst2[1]", "'sentence'"});
  expect_error([&] { read_advglue(path, "rte"); }, {path, "rte[0]", "label 3"});
  expect_error([&] { read_advglue(path, "qqp"); }, {path, "qqp[0]", "'label'"});
  expect_error([&] { read_advglue(path, "mnli"); }, {path, "'mnli'"});
  const auto broken = write_json("broken", "{\"sst2\": [");
  expect_error([&] { read_advglue(broken, "sst2"); }, {broken, "JSON"});
}

}  // namespace
