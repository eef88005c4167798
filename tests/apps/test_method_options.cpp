// Method options from the registry on the command line (adapters/method_options.h through `ladder train`'s
// parser): each key is typed and checked, a bad value is an error naming method.<key> and why, a key set
// on the command line reaches the run's MethodConfig, and an unset key keeps its default.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/train/train_config.h"
#include "tests/support/error_of.h"

namespace {

using namespace ladder;

std::string parse_error(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--model.dir", "/nonexistent-model"};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::error_of([&] {
    apps::TrainConfig c;
    apps::parse_train_config(args, c);
  });
}

}  // namespace

TEST(MethodOptions, BadValuesNameTheKeyAndWhy) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"--method.lora_r", "eight"}, "method.lora_r: 'eight' is not"},
      {{"--method.lora_r", "0"}, "method.lora_r"},
      {{"--method.lora_dropout", "0.1x"}, "method.lora_dropout: '0.1x' is not"},
      {{"--method.dylora_frozen", "maybe"}, "method.dylora_frozen: 'maybe' is not"},
      {{"--method.adapter_activation", "tanhh"}, "method.adapter_activation: 'tanhh' is not one of relu"},
      {{"--method.lst_layers", "1,x"}, "method.lst_layers: 'x' is not a layer index"},
      {{"--method.name", "lora+lorra"}, "method.name: unknown method 'lorra'"},
      {{"--method.name", "full+lora"}, "cannot be combined"},
  };
  for (const auto& c : cases) {
    const std::string e = parse_error(c.args);
    EXPECT_NE(e.find(c.want), std::string::npos) << c.args[0] << " " << c.args[1] << ": " << e;
  }
}

TEST(MethodOptions, SetKeysReachTheRunAndUnsetOnesKeepTheirDefaults) {
  apps::TrainConfig c;
  ASSERT_TRUE(apps::parse_train_config({"--model.dir", "/m", "--method.name", "dylora", "--method.lora_r", "4",
                                        "--method.lora_targets", "query,key,value", "--method.dylora_frozen", "false"},
                                       c));
  EXPECT_EQ(c.method_config.integer("lora_r"), 4);
  EXPECT_EQ(c.method_config.list("lora_targets"), (std::vector<std::string>{"query", "key", "value"}));
  EXPECT_FALSE(c.method_config.flag("dylora_frozen"));
  EXPECT_EQ(c.method_config.real("lora_alpha"), 16.0f);
  EXPECT_EQ(c.method_config.text("adapter_activation"), "relu");
}
