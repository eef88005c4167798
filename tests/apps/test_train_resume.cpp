// Exact resume: a run killed (SIGKILL, or SIGTERM which checkpoints and exits 143) and restarted with the
// same command ends with the same loss series and bit-identical parameters as an uninterrupted run.
// Uses the real all-MiniLM-L6-v2 and real SST-2 rows, LoRA, one thread.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/commands.h"
#include "core/io/checkpoint.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

namespace {

std::vector<std::string> run_args(const std::string& dir) {
  return {"--model.dir", test::minilm_dir(), "--task.name", "sst2",
          "--task.data_dir", test::shared_dir() + "/data/glue/SST-2", "--task.max_length", "32",
          "--task.max_train_examples", "400", "--task.max_eval_examples", "16",
          "--method.name", "lora", "--method.lora_dropout", "0.1",
          "--train.batch_size", "8", "--train.max_steps", "14", "--train.lr", "1e-3", "--train.threads", "1",
          "--checkpoint.dir", dir, "--checkpoint.every", "2", "--checkpoint.keep_last", "2", "--log.every", "100"};
}

int latest_step(const std::string& dir) {
  std::ifstream in(dir + "/checkpoints/latest");
  std::string name;
  if (!(in >> name)) return -1;
  return std::atoi(name.c_str() + 5);  // "step-00000004.h5"
}

// Starts `ladder train` in a child process, waits until it has checkpointed step >= at_step, sends `sig`,
// and returns the child's exit status (as from waitpid).
int run_and_signal(const std::string& dir, int at_step, int sig) {
  auto args = run_args(dir);
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(LADDER_BINARY));
    argv.push_back(const_cast<char*>("train"));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", 1);
    dup2(devnull, 1);
    execv(LADDER_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  for (int i = 0; i < 60000; ++i) {
    if (latest_step(dir) >= at_step) {
      kill(pid, sig);
      break;
    }
    if (waitpid(pid, &status, WNOHANG) == pid) return status;  // finished before the signal
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  waitpid(pid, &status, 0);
  return status;
}

void expect_same_run(const std::string& a, const std::string& b) {
  const auto ca = core::read_checkpoint(a + "/checkpoints/" + core::CheckpointDirectory::file_name(14));
  const auto cb = core::read_checkpoint(b + "/checkpoints/" + core::CheckpointDirectory::file_name(14));
  ASSERT_EQ(ca.params.size(), cb.params.size());
  for (size_t i = 0; i < ca.params.size(); ++i) {
    ASSERT_EQ(ca.params[i].first, cb.params[i].first);
    const auto& x = ca.params[i].second;
    const auto& y = cb.params[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << "parameter " << ca.params[i].first << " differs";
  }
  ASSERT_EQ(ca.metrics.at("loss").size(), 14u);
  EXPECT_EQ(ca.metrics.at("loss"), cb.metrics.at("loss"));  // bit for bit
  EXPECT_EQ(ca.metrics.at("lr"), cb.metrics.at("lr"));
}

}  // namespace

TEST(TrainResume, SigkillThenRestartEqualsUninterruptedRun) {
  if (test::minilm_dir().empty() || ::testing::Test::HasFailure()) return;
  const std::string a = test::temp_dir("resume_a"), b = test::temp_dir("resume_b");
  ASSERT_EQ(apps::train_command(run_args(a)), 0);
  const int status = run_and_signal(b, 6, SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run finished before it could be killed";
  const int killed_at = latest_step(b);
  EXPECT_GE(killed_at, 6);
  EXPECT_LT(killed_at, 14);
  ASSERT_EQ(apps::train_command(run_args(b)), 0);  // same command: resumes from `latest`
  expect_same_run(a, b);
}

TEST(TrainResume, SigtermCheckpointsExits143AndResumesExactly) {
  if (test::minilm_dir().empty() || ::testing::Test::HasFailure()) return;
  const std::string a = test::temp_dir("term_a"), b = test::temp_dir("term_b");
  ASSERT_EQ(apps::train_command(run_args(a)), 0);
  const int status = run_and_signal(b, 4, SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << "SIGTERM must end the run through its own exit path";
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  ASSERT_EQ(apps::train_command(run_args(b)), 0);
  expect_same_run(a, b);
}
