// GLUE tasks and TSV reader: task names, the real CoLA / SST-2 / STS-B files in ../shared (row counts and
// the canonical label sanity numbers from SOURCES.md), the other six tasks from small files written in
// their exact download_glue_data.py layouts (MRPC with its BOM, MNLI's 12/16/10-column files), test files
// without labels, and malformed rows whose errors name "path:LINE".
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "data/glue/glue_reader.h"
#include "data/glue/glue_task.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using namespace ladder::data;

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = ladder::test::temp_dir("glue_" + name) + "/" + name + ".tsv";
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

std::string glue_path(const std::string& rel) { return ladder::test::shared_dir() + "/data/glue/" + rel; }

int count_label(const std::vector<GlueExample>& v, int label) {
  int n = 0;
  for (const auto& e : v) n += e.label == label;
  return n;
}

TEST(GlueTask, ParsesNameVariants) {
  EXPECT_EQ(parse_glue_task("sst2"), GlueTask::sst2);
  EXPECT_EQ(parse_glue_task("SST-2"), GlueTask::sst2);
  EXPECT_EQ(parse_glue_task("sst-2"), GlueTask::sst2);
  EXPECT_EQ(parse_glue_task("STS-B"), GlueTask::stsb);
  EXPECT_EQ(parse_glue_task("sts_b"), GlueTask::stsb);
  EXPECT_EQ(parse_glue_task("CoLA"), GlueTask::cola);
  EXPECT_EQ(parse_glue_task("mnli"), GlueTask::mnli);
  EXPECT_EQ(parse_glue_task("WNLI"), GlueTask::wnli);
  for (GlueTask t : all_glue_tasks()) {
    EXPECT_EQ(parse_glue_task(glue_task_info(t).name), t);
    EXPECT_EQ(parse_glue_task(glue_task_info(t).dir_name), t);
  }
  expect_error([] { parse_glue_task("imdb"); }, {"imdb", "cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"});
}

TEST(GlueTask, InfoTable) {
  const auto& sst2 = glue_task_info(GlueTask::sst2);
  EXPECT_EQ(sst2.dir_name, "SST-2");
  EXPECT_EQ(sst2.num_labels, 2);
  EXPECT_EQ(sst2.dev_files, std::vector<std::string>{"dev.tsv"});
  const auto& stsb = glue_task_info(GlueTask::stsb);
  EXPECT_TRUE(stsb.regression);
  EXPECT_EQ(stsb.num_labels, 1);
  EXPECT_EQ(stsb.primary_metric, "pearson");
  const auto& mnli = glue_task_info(GlueTask::mnli);
  EXPECT_EQ(mnli.num_labels, 3);
  EXPECT_EQ(mnli.label_names, (std::vector<std::string>{"entailment", "neutral", "contradiction"}));  // HF order
  EXPECT_EQ(mnli.dev_files, (std::vector<std::string>{"dev_matched.tsv", "dev_mismatched.tsv"}));
  EXPECT_EQ(glue_task_info(GlueTask::cola).primary_metric, "mcc");
  EXPECT_EQ(glue_task_info(GlueTask::wnli).label_names[1], "entailment");
  for (GlueTask t : all_glue_tasks()) {
    const auto& info = glue_task_info(t);
    EXPECT_EQ(int(info.label_names.size()), info.regression ? 0 : info.num_labels) << info.name;
  }
}

TEST(GlueReader, RealSst2) {
  auto dev = read_glue_tsv(GlueTask::sst2, glue_path("SST-2/dev.tsv"));
  ASSERT_EQ(dev.size(), 872u);
  EXPECT_EQ(count_label(dev, 1), 444);
  EXPECT_EQ(count_label(dev, 0), 428);
  EXPECT_FALSE(dev[0].has_b);
  EXPECT_EQ(dev[0].idx, 0);
  EXPECT_EQ(dev[871].idx, 871);
  EXPECT_EQ(dev[0].a.rfind("it 's a charming and often affecting journey", 0), 0u) << dev[0].a;
  auto train = read_glue_tsv(GlueTask::sst2, glue_path("SST-2/train.tsv"));
  ASSERT_EQ(train.size(), 67349u);
  EXPECT_EQ(count_label(train, 1), 37569);
  EXPECT_EQ(count_label(train, 0), 29780);
}

TEST(GlueReader, RealCola) {
  auto dev = read_glue_tsv(GlueTask::cola, glue_path("CoLA/dev.tsv"));  // headerless, no final newline
  ASSERT_EQ(dev.size(), 1043u);
  EXPECT_EQ(count_label(dev, 1), 721);
  EXPECT_EQ(count_label(dev, 0), 322);
  EXPECT_EQ(dev[0].a, "The sailors rode the breeze clear of the rocks.");
  auto train = read_glue_tsv(GlueTask::cola, glue_path("CoLA/train.tsv"));
  ASSERT_EQ(train.size(), 8551u);
  EXPECT_EQ(count_label(train, 1), 6023);
  EXPECT_EQ(count_label(train, 0), 2528);
  EXPECT_EQ(train[0].a.rfind("Our friends won't buy this analysis", 0), 0u);
}

TEST(GlueReader, RealStsb) {
  auto dev = read_glue_tsv(GlueTask::stsb, glue_path("STS-B/dev.tsv"));
  ASSERT_EQ(dev.size(), 1500u);
  double sum = 0;
  for (const auto& e : dev) {
    EXPECT_TRUE(e.has_b);
    EXPECT_EQ(e.label, -1);
    sum += e.score;
  }
  EXPECT_NEAR(sum / 1500.0, 2.364, 5e-4);
  EXPECT_EQ(dev[0].a, "A man with a hard hat is dancing.");
  EXPECT_EQ(dev[0].b, "A man wearing a hard hat is dancing.");
  EXPECT_FLOAT_EQ(dev[0].score, 5.0f);
  EXPECT_EQ(read_glue_tsv(GlueTask::stsb, glue_path("STS-B/train.tsv")).size(), 5749u);
}

TEST(GlueReader, MrpcWithBom) {
  const auto path = write_file("mrpc",
                               "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                               "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him as only \" the witness \" .\n"
                               "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n"
                               "1\t1330381\t1330521\tThey had published an advertisement .\tOn June 10 , the ship 's owners .\n");
  auto v = read_glue_tsv(GlueTask::mrpc, path);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].label, 1);
  EXPECT_EQ(v[1].label, 0);
  EXPECT_EQ(v[0].a, "Amrozi accused his brother .");
  EXPECT_EQ(v[0].b, "Referring to him as only \" the witness \" .");  // quotes kept raw
  EXPECT_TRUE(v[0].has_b);
  EXPECT_EQ(v[2].idx, 2);
  // test.tsv: no BOM, "index" replaces "Quality", no labels.
  auto t = read_glue_tsv(GlueTask::mrpc, write_file("mrpc_test", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                                                 "0\t1089874\t1089925\tPCCW 's chief .\tCurrent Chief .\n"));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].label, -1);
  EXPECT_EQ(t[0].b, "Current Chief .");
}

TEST(GlueReader, Qqp) {
  auto v = read_glue_tsv(GlueTask::qqp, write_file("qqp", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                                          "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0\n"
                                                          "263843\t69383\t380476\tI want to pursue PhD?\tI handle social media?\t1\n"
                                                          "172974\t266948\t175089\tIs there a theory?\tIs it true?\t0\n"));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1].label, 1);
  EXPECT_EQ(v[0].a, "Why are African-Americans so beautiful?");
  EXPECT_EQ(v[0].b, "Why are hispanics so beautiful?");
  auto t = read_glue_tsv(GlueTask::qqp, write_file("qqp_test", "id\tquestion1\tquestion2\n0\tA?\tB?\n"));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].label, -1);
  EXPECT_EQ(t[0].b, "B?");
}

const char* kMnliPrefix = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2";

std::string mnli_row(int i, const std::string& s1, const std::string& s2, const std::string& tail) {
  return std::to_string(i) + "\t31193\t31193n\tgovernment\t( ( a b ) )\t( c )\t(ROOT (S a))\t(ROOT (S c))\t" + s1 + "\t" + s2 + tail + "\n";
}

TEST(GlueReader, MnliLayoutsAndLabelOrder) {
  // train: 12 columns (label1, gold_label)
  auto train = read_glue_tsv(GlueTask::mnli, write_file("mnli_train", std::string(kMnliPrefix) + "\tlabel1\tgold_label\n" +
                                                                          mnli_row(0, "P0", "H0", "\tneutral\tneutral") +
                                                                          mnli_row(1, "P1", "H1", "\tentailment\tentailment") +
                                                                          mnli_row(2, "P2", "H2", "\tcontradiction\tcontradiction")));
  ASSERT_EQ(train.size(), 3u);
  EXPECT_EQ(train[0].label, 1);  // neutral
  EXPECT_EQ(train[1].label, 0);  // entailment
  EXPECT_EQ(train[2].label, 2);  // contradiction
  EXPECT_EQ(train[2].a, "P2");
  EXPECT_EQ(train[2].b, "H2");
  // dev_matched: 16 columns (label1..label5, gold_label last); gold wins over the annotator votes.
  auto dev = read_glue_tsv(GlueTask::mnli,
                           write_file("mnli_dev", std::string(kMnliPrefix) + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
                                                      mnli_row(0, "P0", "H0", "\tneutral\tentailment\tentailment\tentailment\tneutral\tentailment") +
                                                      mnli_row(1, "P1", "H1", "\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction") +
                                                      mnli_row(2, "P2", "H2", "\tneutral\tneutral\tneutral\tneutral\tneutral\tneutral")));
  ASSERT_EQ(dev.size(), 3u);
  EXPECT_EQ(dev[0].label, 0);
  EXPECT_EQ(dev[1].label, 2);
  EXPECT_EQ(dev[2].label, 1);
  // test_matched: 10 columns, unlabeled.
  auto test = read_glue_tsv(GlueTask::mnli, write_file("mnli_test", std::string(kMnliPrefix) + "\n" + mnli_row(0, "P", "H", "")));
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(test[0].label, -1);
  EXPECT_EQ(test[0].b, "H");
}

TEST(GlueReader, QnliRteWnli) {
  auto qnli = read_glue_tsv(GlueTask::qnli, write_file("qnli", "index\tquestion\tsentence\tlabel\n"
                                                               "0\tWhat came into force?\tThe law came into force.\tentailment\n"
                                                               "1\tWhat is the name?\tIt rained.\tnot_entailment\n"
                                                               "2\tWho?\tHim.\tentailment\n"));
  ASSERT_EQ(qnli.size(), 3u);
  EXPECT_EQ(qnli[0].a, "What came into force?");
  EXPECT_EQ(qnli[0].label, 0);
  EXPECT_EQ(qnli[1].label, 1);
  auto rte = read_glue_tsv(GlueTask::rte, write_file("rte", "index\tsentence1\tsentence2\tlabel\n"
                                                            "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment\n"
                                                            "1\tA place of \"sorrow\".\tPope buried.\tentailment\n"
                                                            "2\tHerceptin was approved.\tHerceptin can be used.\tentailment\n"));
  ASSERT_EQ(rte.size(), 3u);
  EXPECT_EQ(rte[0].label, 1);
  EXPECT_EQ(rte[1].label, 0);
  EXPECT_EQ(rte[1].a, "A place of \"sorrow\".");
  auto wnli = read_glue_tsv(GlueTask::wnli, write_file("wnli", "index\tsentence1\tsentence2\tlabel\n"
                                                               "0\tI stuck a pin through a carrot.\tThe carrot had a hole.\t1\n"
                                                               "1\tJohn could not see.\tJohn was short.\t0\n"
                                                               "2\tA B.\tC D.\t1\n"));
  ASSERT_EQ(wnli.size(), 3u);
  EXPECT_EQ(wnli[0].label, 1);
  EXPECT_EQ(wnli[1].label, 0);
  auto rte_test = read_glue_tsv(GlueTask::rte, write_file("rte_test", "index\tsentence1\tsentence2\n0\tA.\tB.\n1\tC.\tD.\n"));
  ASSERT_EQ(rte_test.size(), 2u);
  EXPECT_EQ(rte_test[1].label, -1);
  EXPECT_EQ(rte_test[1].a, "C.");
}

TEST(GlueReader, UnlabeledTestFiles) {
  auto cola = read_glue_tsv(GlueTask::cola, write_file("cola_test", "index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked.\n"));
  ASSERT_EQ(cola.size(), 2u);
  EXPECT_EQ(cola[0].a, "Bill whistled past the house.");
  EXPECT_EQ(cola[0].label, -1);
  auto sst = read_glue_tsv(GlueTask::sst2, write_file("sst_test", "index\tsentence\n0\tuneasy mishmash of styles .\n"));
  ASSERT_EQ(sst.size(), 1u);
  EXPECT_EQ(sst[0].label, -1);
  auto stsb = read_glue_tsv(GlueTask::stsb, write_file("stsb_test", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                                                                   "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl is styling her hair.\tA girl is brushing her hair.\n"));
  ASSERT_EQ(stsb.size(), 1u);
  EXPECT_EQ(stsb[0].b, "A girl is brushing her hair.");
  EXPECT_TRUE(std::isnan(stsb[0].score));
}

TEST(GlueReader, MalformedRowsNamePathAndLine) {
  const std::string sst_header = "sentence\tlabel\n";
  auto p = write_file("bad_fields", sst_header + "good .\t1\nbad row without label\n");
  expect_error([&] { read_glue_tsv(GlueTask::sst2, p); }, {p + ":3", "1 tab-separated fields, expected 2"});
  p = write_file("bad_label", sst_header + "good .\t1\nok .\t0\nwhat .\t2\n");
  expect_error([&] { read_glue_tsv(GlueTask::sst2, p); }, {p + ":4", "label '2'"});
  p = write_file("bad_empty", sst_header + "good .\t1\n\nok .\t0\n");
  expect_error([&] { read_glue_tsv(GlueTask::sst2, p); }, {p + ":3", "empty line"});
  p = write_file("bad_rte", "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tneutral\n");
  expect_error([&] { read_glue_tsv(GlueTask::rte, p); }, {p + ":2", "unknown rte label 'neutral'", "not_entailment"});
  p = write_file("bad_mnli", std::string(kMnliPrefix) + "\tlabel1\tgold_label\n" + mnli_row(0, "P", "H", "\tneutral\t-"));
  expect_error([&] { read_glue_tsv(GlueTask::mnli, p); }, {p + ":2", "label '-'"});
  const std::string stsb_header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
  const std::string stsb_prefix = "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA.\tB.\t";
  p = write_file("bad_score_nan", stsb_header + stsb_prefix + "high\n");
  expect_error([&] { read_glue_tsv(GlueTask::stsb, p); }, {p + ":2", "'high' is not a number"});
  p = write_file("bad_score_range", stsb_header + stsb_prefix + "3.2\n" + stsb_prefix + "5.5\n");
  expect_error([&] { read_glue_tsv(GlueTask::stsb, p); }, {p + ":3", "outside [0, 5]"});
  p = write_file("bad_score_neg", stsb_header + stsb_prefix + "-0.1\n");
  expect_error([&] { read_glue_tsv(GlueTask::stsb, p); }, {p + ":2", "outside [0, 5]"});
  p = write_file("bad_cola", "gj04\t1\t\tFine.\ngj04\t1\tOops.\n");  // missing mark column
  expect_error([&] { read_glue_tsv(GlueTask::cola, p); }, {p + ":2", "3 tab-separated fields, expected 4"});
  // Wrong task for the file: the header check says so instead of reading nonsense.
  p = write_file("wrong_task", "sentence\tlabel\nok .\t1\n");
  expect_error([&] { read_glue_tsv(GlueTask::rte, p); }, {p + ":1", "header", "sentence1"});
  expect_error([&] { read_glue_tsv(GlueTask::sst2, "/nonexistent/dev.tsv"); }, {"/nonexistent/dev.tsv", "cannot open"});
}

}  // namespace
