// The real `ladder` binary's command line, every command: options match exactly (an abbreviation is an
// error with a did-you-mean, on the command line as in an INI), an error names the command once, each
// command's --help names that command, and the help for log.every states the progress-line rate limit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/progress.h"

namespace {

struct Outcome {
  int rc = -1;
  std::string out;  // stdout and stderr together
};

// Runs `ladder args...` with stdout and stderr captured together.
Outcome ladder(const std::vector<std::string>& args) {
  std::string cmd = LADDER_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  Outcome r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// eval and export check their required options before the unknown ones: give them.
std::vector<std::string> with_required(const std::string& cmd, std::vector<std::string> args) {
  if (cmd == "eval" || cmd == "export") args.insert(args.end(), {"--checkpoint", "/nonexistent"});
  if (cmd == "export") args.insert(args.end(), {"--format", "peft", "--output", "/nonexistent/out"});
  return args;
}

// `--thread` is a prefix of every command's --threads, which Boost's default style would take for it.
TEST(CommandLine, NoCommandAcceptsAnAbbreviatedOption) {
  for (const std::string cmd : {"train", "cache", "eval", "export", "encode", "bench", "bench-comm", "inspect"}) {
    const Outcome r = ladder(with_required(cmd, {cmd, "--thread", "1"}));
    EXPECT_EQ(r.rc, 1) << cmd << ": " << r.out;
    if (cmd == "train" || cmd == "cache") {
      EXPECT_TRUE(has(r.out, "unknown configuration key 'thread'")) << r.out;
      EXPECT_TRUE(has(r.out, "did you mean 'threads'")) << r.out;
    } else {
      EXPECT_TRUE(has(r.out, "unknown option '--thread'")) << cmd << ": " << r.out;
      EXPECT_TRUE(has(r.out, "did you mean '--threads'")) << cmd << ": " << r.out;
    }
  }
  // eval and export's own options: --check is not --checkpoint.
  for (const std::string cmd : {"eval", "export"}) {
    const Outcome r = ladder(with_required(cmd, {cmd, "--check", "/nonexistent"}));
    EXPECT_EQ(r.rc, 1) << r.out;
    EXPECT_TRUE(has(r.out, "did you mean '--checkpoint'")) << cmd << ": " << r.out;
  }
}

// The same key, abbreviated, is rejected with the same suggestion on the command line and in an INI.
TEST(CommandLine, AbbreviatedKeyIsTheSameErrorOnTheCommandLineAndInAnIni) {
  const Outcome cli = ladder({"train", "--model.dir", "/nonexistent", "--train.max_step", "2"});
  EXPECT_EQ(cli.rc, 1) << cli.out;
  EXPECT_TRUE(has(cli.out, "unknown configuration key 'train.max_step' on the command line (did you mean 'train.max_steps'?)"))
      << cli.out;

  const std::string dir = testing::TempDir() + "ladder_cli_ini";
  std::filesystem::create_directories(dir);
  const std::string ini = dir + "/run.ini";
  std::ofstream(ini) << "[model]\ndir = /nonexistent\n[train]\nmax_step = 2\n";
  const Outcome file = ladder({"train", "--config", ini});
  EXPECT_EQ(file.rc, 1) << file.out;
  EXPECT_TRUE(has(file.out, "unknown configuration key 'train.max_step' in " + ini + " (did you mean 'train.max_steps'?)"))
      << file.out;
}

TEST(CommandLine, AnErrorNamesTheCommandOnce) {
  const Outcome bad_value = ladder({"train", "--model.dir", "/nonexistent", "--train.lr", "abc"});
  EXPECT_EQ(bad_value.rc, 1) << bad_value.out;
  EXPECT_TRUE(has(bad_value.out, "ladder train: error: ")) << bad_value.out;
  EXPECT_TRUE(has(bad_value.out, "'--train.lr'")) << bad_value.out;
  EXPECT_EQ(count_of(bad_value.out, "ladder train"), 1u) << bad_value.out;

  const Outcome missing = ladder({"eval"});
  EXPECT_EQ(missing.rc, 1) << missing.out;
  EXPECT_TRUE(has(missing.out, "ladder eval: error: ")) << missing.out;
  EXPECT_TRUE(has(missing.out, "checkpoint")) << missing.out;
  EXPECT_EQ(count_of(missing.out, "ladder eval"), 1u) << missing.out;

  const Outcome bench_value = ladder({"bench", "--model", "/nonexistent", "--iters", "many"});
  EXPECT_EQ(bench_value.rc, 1) << bench_value.out;
  EXPECT_EQ(count_of(bench_value.out, "ladder bench"), 1u) << bench_value.out;
}

TEST(CommandLine, ErrorLineDropsARepeatedCommandPrefix) {
  using ladder::apps::error_line;
  EXPECT_EQ(error_line("eval", "ladder eval: the option '--checkpoint' is required"),
            "ladder eval: error: the option '--checkpoint' is required");
  EXPECT_EQ(error_line("eval", "checkpoint 'x' does not exist"), "ladder eval: error: checkpoint 'x' does not exist");
  // Another command's name is context, not a repetition.
  EXPECT_EQ(error_line("cache", "ladder cache runs data-parallel only"), "ladder cache: error: ladder cache runs data-parallel only");
}

TEST(CommandLine, EachCommandsHelpNamesItself) {
  for (const std::string cmd : {"train", "cache", "eval", "export", "encode", "bench", "bench-comm", "inspect"}) {
    const Outcome r = ladder({cmd, "--help"});
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.out;
    EXPECT_EQ(r.out.rfind("usage: ladder " + cmd + " ", 0), 0u) << cmd << ": " << r.out.substr(0, 200);
  }
}

// The help for log.every states the interval Progress enforces; the trainer passes the same constant.
TEST(CommandLine, LogEveryHelpStatesTheRateLimit) {
  const Outcome r = ladder({"train", "--help"});
  ASSERT_EQ(r.rc, 0) << r.out;
  const size_t at = r.out.find("--log.every");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::string help;  // Boost wraps help lines: compare with the whitespace collapsed
  for (char ch : r.out.substr(at, r.out.find("--log.report", at) - at))
    if (!std::isspace(static_cast<unsigned char>(ch))) help += ch;
    else if (!help.empty() && help.back() != ' ') help += ' ';
  EXPECT_TRUE(has(help, "at most one per " + std::to_string(int(ladder::apps::kPlainLineInterval_s)) + " s")) << help;

  ladder::apps::Progress progress("train", 10, "steps", ladder::apps::kPlainLineInterval_s, /*redraw=*/false);
  testing::internal::CaptureStdout();
  progress.update(1, "first");
  progress.update(2, "second");  // due, but within the interval: skipped
  progress.finish("done");
  const std::string lines = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(has(lines, "train 1/10 steps")) << lines;
  EXPECT_FALSE(has(lines, "second")) << lines;
  EXPECT_TRUE(has(lines, "train 2/10 steps")) << lines;  // the final line
  EXPECT_EQ(count_of(lines, "\n"), 2u) << lines;
}

}  // namespace
