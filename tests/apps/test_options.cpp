// Command-line parsing shared by the ladder commands: closest-match suggestions, unknown options with a
// "did you mean", missing required options, bad values, --help and the effective-options listing.
#include <gtest/gtest.h>

#include "apps/train/train_config.h"
#include "tests/support/error_of.h"

#include <functional>
#include <string>
#include <vector>

#include "apps/options.h"

namespace {

using ladder::apps::closest_match;
using ladder::apps::effective_options;
using ladder::apps::parse_options;
namespace po = ladder::apps::po;

using ladder::test::error_of;

struct Opts {
  std::string model, pooling, report;
  int max_len = 0, batch = 0, threads = 0;
  bool normalize = false;
  po::options_description desc{"ladder test"};
  Opts() {
    desc.add_options()("model", po::value<std::string>(&model)->required(), "model dir")(
        "max-length", po::value<int>(&max_len)->default_value(128), "tokens")(
        "batch-size", po::value<int>(&batch)->default_value(32), "batch")(
        "pooling", po::value<std::string>(&pooling)->default_value("auto"), "pooling")(
        "normalize", po::bool_switch(&normalize), "normalise");
    ladder::apps::add_common_options(desc, threads, report);
  }
};

TEST(Options, ClosestMatchSuggestsNearOptions) {
  const std::vector<std::string> known = {"model", "max-length", "batch-size", "pooling", "normalize", "threads", "report"};
  EXPECT_EQ(closest_match("max-lenght", known), "max-length");  // transposition
  EXPECT_EQ(closest_match("modle", known), "model");
  EXPECT_EQ(closest_match("batchsize", known), "batch-size");
  EXPECT_EQ(closest_match("normalise", known), "normalize");
  EXPECT_EQ(closest_match("thread", known), "threads");
  EXPECT_EQ(closest_match("pooling", known), "pooling");  // exact
  EXPECT_EQ(closest_match("xyzzy", known), "");            // nothing close
  EXPECT_EQ(closest_match("learning-rate", known), "");
  EXPECT_EQ(closest_match("anything", {}), "");
  // An abbreviation far by edit distance: the shortest option it begins.
  EXPECT_EQ(closest_match("check", {"pick", "checkpoint", "checkpoint-dir"}), "checkpoint");
  EXPECT_EQ(closest_match("b", known), "");  // too short to abbreviate anything
}

TEST(Options, ParsesValuesAndDefaults) {
  Opts o;
  po::variables_map vm;
  ASSERT_TRUE(parse_options("test", {"--model", "/m", "--max-length", "64", "--normalize", "--threads", "2"}, o.desc, vm));
  EXPECT_EQ(o.model, "/m");
  EXPECT_EQ(o.max_len, 64);
  EXPECT_EQ(o.batch, 32);
  EXPECT_EQ(o.pooling, "auto");
  EXPECT_TRUE(o.normalize);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.report, "");
  Opts eq;
  po::variables_map vm2;
  ASSERT_TRUE(parse_options("test", {"--model=/x", "--pooling=mean"}, eq.desc, vm2));
  EXPECT_EQ(eq.model, "/x");
  EXPECT_EQ(eq.pooling, "mean");

  auto eff = effective_options(vm);
  auto value = [&](const std::string& k) {
    for (auto& [key, v] : eff)
      if (key == k) return v;
    return std::string("<absent>");
  };
  EXPECT_EQ(value("model"), "/m");
  EXPECT_EQ(value("max-length"), "64");
  EXPECT_EQ(value("batch-size"), "32");
  EXPECT_EQ(value("normalize"), "true");
  EXPECT_EQ(value("threads"), "2");
  EXPECT_EQ(value("help"), "<absent>");
}

TEST(Options, UnknownOptionSuggestsClosest) {
  Opts o;
  po::variables_map vm;
  const std::string msg = error_of([&] { parse_options("encode", {"--model", "/m", "--max-lenght", "64"}, o.desc, vm); });
  EXPECT_NE(msg.find("'--max-lenght'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean '--max-length'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ladder encode"), std::string::npos) << msg;

  Opts o2;
  po::variables_map vm2;
  const std::string far = error_of([&] { parse_options("encode", {"--model", "/m", "--frobnicate"}, o2.desc, vm2); });
  EXPECT_NE(far.find("'--frobnicate'"), std::string::npos) << far;
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;  // no suggestion when nothing is close
}

TEST(Options, MissingRequiredOptionIsNamed) {
  Opts o;
  po::variables_map vm;
  const std::string msg = error_of([&] { parse_options("encode", {"--max-length", "64"}, o.desc, vm); });
  EXPECT_NE(msg.find("model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ladder encode"), std::string::npos) << msg;
}

TEST(Options, InvalidValueNamesTheOption) {
  Opts o;
  po::variables_map vm;
  const std::string msg = error_of([&] { parse_options("encode", {"--model", "/m", "--batch-size", "many"}, o.desc, vm); });
  EXPECT_NE(msg.find("batch-size"), std::string::npos) << msg;
  Opts o2;
  po::variables_map vm2;
  const std::string missing_value = error_of([&] { parse_options("encode", {"--model"}, o2.desc, vm2); });
  EXPECT_NE(missing_value.find("model"), std::string::npos) << missing_value;
}

TEST(Options, HelpReturnsFalseWithoutRequiringOptions) {
  Opts o;
  po::variables_map vm;
  testing::internal::CaptureStdout();
  const bool run = parse_options("encode", {"--help"}, o.desc, vm);
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(run);
  EXPECT_NE(out.find("usage: ladder encode"), std::string::npos) << out;
  EXPECT_NE(out.find("--max-length"), std::string::npos) << out;
}

}  // namespace

// method.lst_recompute: auto by default, blocks / softmax / none on request, and any other value names the option.
TEST(Options, LstRecomputeParsesAndBadValuesNameIt) {
  ladder::apps::TrainConfig on, off, bad;
  ASSERT_TRUE(ladder::apps::parse_train_config({"--model.dir", "/m", "--method.name", "lst"}, on));
  EXPECT_EQ(on.method_config.text("lst_recompute"), "auto");
  for (const char* mode : {"blocks", "softmax", "none"}) {
    ASSERT_TRUE(ladder::apps::parse_train_config({"--model.dir", "/m", "--method.name", "lst", "--method.lst_recompute", mode}, off));
    EXPECT_EQ(off.method_config.text("lst_recompute"), mode);
  }
  const std::string msg = error_of([&] {
    ladder::apps::parse_train_config({"--model.dir", "/m", "--method.name", "lst", "--method.lst_recompute", "sometimes"}, bad);
  });
  EXPECT_NE(msg.find("lst_recompute"), std::string::npos) << msg;
}

// No prefix guessing: an abbreviation is an unknown option with a suggestion, as an INI key is.
TEST(Options, AbbreviationIsAnUnknownOptionWithASuggestion) {
  Opts o;
  po::variables_map vm;
  const std::string msg = error_of([&] { parse_options("encode", {"--model", "/m", "--max-len", "64"}, o.desc, vm); });
  EXPECT_NE(msg.find("unknown option '--max-len'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean '--max-length'"), std::string::npos) << msg;

  ladder::apps::TrainConfig cli, ini;
  const std::string on_cli = error_of([&] {
    ladder::apps::parse_train_config({"--model.dir", "/m", "--train.max_step", "2"}, cli);
  });
  EXPECT_NE(on_cli.find("unknown configuration key 'train.max_step' on the command line (did you mean 'train.max_steps'?)"),
            std::string::npos) << on_cli;
  const std::string text = "[model]\ndir = /m\n[train]\nmax_step = 2\n";
  const std::string in_ini = error_of([&] { ladder::apps::parse_train_config({}, ini, &text); });
  EXPECT_NE(in_ini.find("unknown configuration key 'train.max_step' in (checkpoint config) (did you mean 'train.max_steps'?)"),
            std::string::npos) << in_ini;
}

// A bad value of a config key names the key, not a command (the caller, train, cache, eval or export, does).
TEST(Options, TrainConfigValueErrorNamesTheKeyNotACommand) {
  ladder::apps::TrainConfig c;
  const std::string msg = error_of([&] { ladder::apps::parse_train_config({"--model.dir", "/m", "--train.lr", "abc"}, c); });
  EXPECT_NE(msg.find("'--train.lr'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("ladder train"), std::string::npos) << msg;
}
