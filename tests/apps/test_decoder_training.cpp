// Fine-tuning the real SmolLM2-135M-Instruct (GGUF) from the command line: causal-LM training on text with
// every method that applies, on prompt/response pairs, and SST-2 classification through the last token; the
// same LoRA run at 1 process, 2 data-parallel ranks and 3 tensor-parallel ranks (SmolLM2's 9 query and 3
// key/value heads split three ways) gives the same losses and parameters; an interrupted run resumes to
// the same result; `ladder generate` answers, and `ladder export --format peft` writes a CAUSAL_LM adapter.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/io/checkpoint.h"
#include "tests/support/same_training.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace ladder;
using ladder::test::expect_same_training;
using ladder::test::final_checkpoint;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

const char* smollm2() {
  const char* p = std::getenv("LADDER_SMOLLM2_GGUF");
  return p && *p ? p : nullptr;
}

// Runs `ladder <command> args` (under mpirun with ranks > 1); output to log; returns the exit code.
int run(const std::string& command, const std::vector<std::string>& args, const std::string& log, int ranks = 1) {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  std::string cmd;
  if (ranks > 1) cmd = std::string(LADDER_MPIEXEC) + " -np " + std::to_string(ranks) + " --oversubscribe ";
  cmd += std::string(LADDER_BINARY) + " " + command;
  for (auto& a : args) cmd += " " + q(a);
  cmd += " > ";
  cmd += q(log);
  cmd += " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lm_args(const std::string& dir, const std::string& method, int steps, int batch = 4) {
  return {"--model.dir", smollm2(), "--task.name", "lm", "--task.max_length", "32", "--task.max_train_examples", "64",
          "--task.max_eval_examples", "2", "--method.name", method, "--train.batch_size", std::to_string(batch),
          "--train.max_steps", std::to_string(steps), "--train.lr", method == "full" ? "1e-5" : "1e-3",
          "--train.threads", "1", "--checkpoint.dir", dir, "--checkpoint.keep_last", "1", "--log.every", "100"};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& extra) {
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

double eval_metric(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/report.json");
  const auto j = nlohmann::json::parse(in);
  return j.at("metrics").at("final_eval").at(name).get<double>();
}

}  // namespace

#define NEED_SMOLLM2()                                                                              \
  if (!smollm2()) {                                                                                 \
    LADDER_SKIP_OR_FAIL() << "LADDER_SMOLLM2_GGUF not set (scripts/fetch_smollm2.sh fetches the file)"; \
  }

TEST(DecoderTraining, EveryApplicableMethodTrainsOnTextAndReportsPerplexity) {
  NEED_SMOLLM2();
  for (const std::string method : {"lora", "dylora", "ia3", "prompt", "full"}) {
    const std::string dir = test::temp_dir("dec_lm_" + method);
    ASSERT_EQ(run("train", lm_args(dir, method, 2, 2), dir + "/../" + method + ".log"), 0) << slurp(dir + "/../" + method + ".log");
    const double ppl = eval_metric(dir, "perplexity");
    EXPECT_TRUE(std::isfinite(ppl) && ppl > 1.0 && ppl < 1000.0) << method << ": perplexity " << ppl;
  }
}

TEST(DecoderTraining, LoraAgreesAtOneProcessTwoDataRanksAndThreeTensorRanks) {
  NEED_SMOLLM2();
  const int steps = 3;
  const std::string ref = test::temp_dir("dec_layout_ref");
  ASSERT_EQ(run("train", lm_args(ref, "lora", steps, 4), ref + "/../ref.log"), 0) << slurp(ref + "/../ref.log");
  const std::string dp = test::temp_dir("dec_layout_dp2");
  ASSERT_EQ(run("train", lm_args(dp, "lora", steps, 2), dp + "/../dp.log", 2), 0) << slurp(dp + "/../dp.log");
  expect_same_training(ref, dp, steps, 2e-5);
  const std::string tp = test::temp_dir("dec_layout_tp3");
  ASSERT_EQ(run("train", with(lm_args(tp, "lora", steps, 4), {"--parallel.tp", "3"}), tp + "/../tp.log", 3), 0)
      << slurp(tp + "/../tp.log");
  expect_same_training(ref, tp, steps, 2e-5);
}

TEST(DecoderTraining, AnInterruptedRunResumesToTheSameResult) {
  NEED_SMOLLM2();
  const std::string ref = test::temp_dir("dec_resume_ref"), cut = test::temp_dir("dec_resume_cut");
  const auto args = [](const std::string& d) { return with(lm_args(d, "lora", 6), {"--checkpoint.every", "1"}); };
  ASSERT_EQ(run("train", args(ref), ref + "/../a.log"), 0) << slurp(ref + "/../a.log");
  // Killed (SIGKILL: no chance to save) once step 2 is on disk, then the same command again.
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<std::string> a = args(cut);
    std::vector<char*> argv = {const_cast<char*>(LADDER_BINARY), const_cast<char*>("train")};
    for (auto& x : a) argv.push_back(x.data());
    argv.push_back(nullptr);
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(LADDER_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  for (int i = 0; i < 120000; ++i) {
    std::ifstream in(cut + "/checkpoints/latest");
    std::string name;
    if (in >> name && std::atoi(name.c_str() + 5) >= 2) {
      kill(pid, SIGKILL);
      break;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    usleep(2000);
  }
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_EQ(run("train", args(cut), cut + "/../c.log"), 0) << slurp(cut + "/../c.log");
  EXPECT_NE(slurp(cut + "/../c.log").find("resum"), std::string::npos) << slurp(cut + "/../c.log");
  expect_same_training(ref, cut, 6, 0.0);
}

TEST(DecoderTraining, PromptResponsePairsTrainOnTheResponseAndSst2ClassifiesWithTheLastToken) {
  NEED_SMOLLM2();
  const std::string dir = test::temp_dir("dec_pairs");
  {
    std::ofstream out(dir + "/../pairs.tsv");
    for (int i = 0; i < 16; ++i)
      out << "<|im_start|>user\\nWhat is " << i << " plus " << i << "?<|im_end|>\\n<|im_start|>assistant\\n\t" << 2 * i
          << "<|im_end|>\n";
  }
  const std::string pairs = dir + "/../pairs.tsv";
  ASSERT_EQ(run("train", with(lm_args(dir, "lora", 2, 4), {"--task.format", "pairs", "--task.train_text", pairs,
                                                           "--task.eval_text", pairs}),
                dir + "/../pairs.log"),
            0)
      << slurp(dir + "/../pairs.log");
  // The response tokens only: a number and <|im_end|> per pair, not the whole prompt.
  EXPECT_LT(eval_metric(dir, "tokens"), 16 * 6) << slurp(dir + "/../pairs.log");
  const std::string sst = test::temp_dir("dec_sst2");
  ASSERT_EQ(run("train", {"--model.dir", smollm2(), "--task.name", "sst2", "--task.data_dir", test::shared_dir() + "/data/glue/SST-2",
                          "--task.max_length", "32", "--task.max_train_examples", "32", "--task.max_eval_examples", "16",
                          "--method.name", "lora", "--train.batch_size", "4", "--train.max_steps", "2", "--train.threads", "1",
                          "--checkpoint.dir", sst},
                sst + "/../sst.log"),
            0)
      << slurp(sst + "/../sst.log");
  const double acc = eval_metric(sst, "accuracy");
  EXPECT_TRUE(acc >= 0.0 && acc <= 1.0) << acc;
  // The classifier is transformers' layout for a decoder: `score` [2, d] without a bias, trained with LoRA.
  const auto ck = final_checkpoint(sst, 2);
  bool score = false, lora = false;
  for (const auto& [name, t] : ck.params) {
    if (name == "score.weight") {
      score = true;
      EXPECT_EQ(t.dim(0), 2);
      EXPECT_EQ(t.dim(1), 576);
    }
    EXPECT_NE(name, "score.bias");
    lora = lora || name.find("self_attn.q_proj.lora_A") != std::string::npos;
  }
  EXPECT_TRUE(score && lora);
}

// Bad values of the decoder commands' options are refused before any model is read, naming the option.
TEST(DecoderTraining, BadOptionsNameTheOption) {
  const std::string dir = test::temp_dir("dec_badopts");
  const std::string nowhere = dir + "/missing.gguf";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"generate", "--model", nowhere, "--prompt", "x", "--top-p", "0"}, "--top-p"},
      {{"generate", "--model", nowhere, "--prompt", "x", "--temperature", "-1"}, "--temperature"},
      {{"generate", "--model", nowhere, "--prompt", "x", "--max-new-tokens", "0"}, "--max-new-tokens"},
      {{"generate", "--model", nowhere, "--prompt", "x"}, "not a GGUF file"},
      {{"perplexity", "--model", nowhere, "--text", nowhere, "--ctx", "1"}, "--ctx"},
      {{"perplexity", "--model", nowhere, "--text", nowhere, "--ctx", "8", "--stride", "9"}, "--stride"},
      {{"perplexity", "--text", nowhere}, "--model or --checkpoint"},
      {{"train", "--model.dir", nowhere, "--task.name", "lm", "--task.format", "chat", "--checkpoint.dir", dir}, "task.format"},
  };
  int i = 0;
  for (const auto& [args, want] : cases) {
    const std::string log = dir + "/" + std::to_string(i++) + ".log";
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    EXPECT_NE(run(args[0], rest, log), 0) << args[0] << " " << want;
    EXPECT_NE(slurp(log).find(want), std::string::npos) << slurp(log);
  }
}

TEST(DecoderTraining, GenerateAnswersAndExportWritesACausalLmAdapter) {
  NEED_SMOLLM2();
  const std::string dir = test::temp_dir("dec_generate");
  ASSERT_EQ(run("generate", {"--model", smollm2(), "--prompt", "The capital of France is", "--max-new-tokens", "4",
                             "--threads", "1", "--quiet"},
                dir + "/gen.log"),
            0)
      << slurp(dir + "/gen.log");
  EXPECT_NE(slurp(dir + "/gen.log").find("Paris"), std::string::npos) << slurp(dir + "/gen.log");
  const std::string run_dir = test::temp_dir("dec_export_run");
  ASSERT_EQ(run("train", lm_args(run_dir, "lora", 1, 2), run_dir + "/../e.log"), 0) << slurp(run_dir + "/../e.log");
  ASSERT_EQ(run("export", {"--checkpoint", run_dir, "--format", "peft", "--output", dir + "/peft"}, dir + "/export.log"), 0)
      << slurp(dir + "/export.log");
  const auto cfg = nlohmann::json::parse(slurp(dir + "/peft/adapter_config.json"));
  EXPECT_EQ(cfg.at("task_type"), "CAUSAL_LM");
  EXPECT_FALSE(cfg.contains("modules_to_save"));
  EXPECT_NE(run("export", {"--checkpoint", run_dir, "--format", "merged", "--output", dir + "/merged"}, dir + "/merged.log"), 0);
  EXPECT_NE(slurp(dir + "/merged.log").find("GGUF"), std::string::npos) << slurp(dir + "/merged.log");
}
