#pragma once
// A tiny training setup that runs in a second: the 2-layer tiny BERT with a 50-entry vocab.txt (5 specials +
// 45 words) and SST-2-style train/dev TSVs whose label follows the sentiment words.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "tests/support/tiny_models.h"

namespace ladder::test {

struct TinySetup {
  std::string root, model, data;
  explicit TinySetup(const std::string& name, int train_rows = 96, int dev_rows = 24) {
    namespace fs = std::filesystem;
    static const std::vector<std::string> good = {"good", "great", "fine", "happy", "lovely", "bright", "warm", "fun",
                                                  "nice", "best", "superb", "sweet", "charming", "clever", "joyful"};
    static const std::vector<std::string> bad = {"bad", "awful", "dull", "sad", "ugly", "dark", "cold", "boring",
                                                 "poor", "worst", "bland", "sour", "tedious", "stupid", "grim"};
    static const std::vector<std::string> neutral = {"the", "a", "film", "movie", "story", "plot", "cast", "is",
                                                     "was", "and", "very", "quite", "its", "this", "ending"};
    root = temp_dir(name);
    model = root + "/model";
    data = root + "/sst2";
    fs::create_directories(model);
    fs::create_directories(data);
    write_tiny_bert(model, 7);
    {
      std::ofstream v(model + "/vocab.txt");
      for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << s << "\n";
      for (auto* list : {&good, &bad, &neutral})
        for (auto& w : *list) v << w << "\n";
    }
    std::ofstream(model + "/tokenizer_config.json") << R"({"do_lower_case": true})" << "\n";
    std::mt19937 g(3);
    auto pick = [&](const std::vector<std::string>& l) { return l[g() % l.size()]; };
    auto write = [&](const std::string& path, int n) {
      std::ofstream out(path);
      out << "sentence\tlabel\n";
      for (int i = 0; i < n; ++i) {
        const int label = int(g() % 2);
        std::string s = pick(neutral) + " " + pick(neutral) + " " + pick(label ? good : bad);
        for (unsigned k = 0, extra = g() % 4; k < extra; ++k) {
          s += ' ';
          s += pick(g() % 2 ? neutral : (label ? good : bad));
        }
        out << s << " \t" << label << "\n";
      }
    };
    write(data + "/train.tsv", train_rows);
    write(data + "/dev.tsv", dev_rows);
  }
  // `ladder train` options for `method` and `steps` steps into `dir`; `extra` (--key value pairs) replaces
  // a default of the same key or adds to them.
  std::vector<std::string> train_args(const std::string& dir, const std::string& method, int steps,
                                      const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"--model.dir", model, "--task.name", "sst2", "--task.data_dir", data,
                                     "--task.max_length", "16", "--method.name", method, "--method.lora_r", "4",
                                     "--method.lora_alpha", "8", "--method.adapter_reduction", "4",
                                     "--train.batch_size", "8", "--train.max_steps", std::to_string(steps),
                                     "--train.lr", "0.01", "--train.threads", "2", "--checkpoint.dir", dir,
                                     "--log.every", "1000"};
    for (size_t i = 0; i + 1 < extra.size(); i += 2) {
      auto it = std::find(args.begin(), args.end(), extra[i]);
      if (it != args.end()) *(it + 1) = extra[i + 1];
      else args.insert(args.end(), {extra[i], extra[i + 1]});
    }
    return args;
  }
  // Trains `method` for `steps` steps into root/<run> in this process; returns the run directory.
  std::string train(const std::string& run, const std::string& method, int steps,
                    const std::vector<std::string>& extra = {}) const {
    const std::string dir = root + "/" + run;
    testing::internal::CaptureStdout();
    const int rc = apps::train_command(train_args(dir, method, steps, extra));
    const std::string out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(rc, 0) << out;
    return dir;
  }
};

}  // namespace ladder::test
