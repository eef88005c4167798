// Faults that must not end in a success code: a non-finite loss or gradient (here: an activation store with
// an infinite hidden state, at one and at two data-parallel ranks) stops the run naming the step, and no
// checkpoint from that step or later exists; a lone damaged checkpoint is an error on resume unless
// --checkpoint.start_over asks to train over it, while an older intact one is still fallen back to; a
// checkpoint refuses base weights other than those it was trained on (resume, eval, export), by content.
// Real `ladder` processes on the tiny BERT (and real files, truncated or rewritten through HDF5).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "apps/commands.h"
#include "apps/train/base_weights.h"
#include "core/io/checkpoint.h"
#include "core/io/hdf5_file.h"
#include "data/activation_store/store_reader.h"
#include "tests/support/error_of.h"
#include "tests/support/tiny_run.h"

namespace {

namespace fs = std::filesystem;
namespace core = ladder::core;
namespace apps = ladder::apps;
using ladder::test::error_of;
using ladder::test::TinySetup;

struct Result {
  int rc = -1;
  std::string out;  // stdout and stderr
};

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs the ladder binary (under `launcher`, e.g. mpirun, when given) with a time limit; output to `log`.
Result run_ladder(const std::vector<std::string>& args, const std::string& log, const std::string& launcher = "") {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  std::string cmd = "timeout 300 " + launcher + (launcher.empty() ? "" : " ") + LADDER_BINARY;
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " > ";
  cmd += quote(log);
  cmd += " 2>&1";
  const int st = std::system(cmd.c_str());
  Result r;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(log);
  r.out.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const TinySetup& setup() {
  static TinySetup s("train_faults");
  return s;
}

// An LST activation store of the tiny setup (train and dev) in `cache`, written by `ladder cache`.
std::vector<std::string> lst_store_args(const std::string& cache, const std::string& dir,
                                        const std::vector<std::string>& extra = {}) {
  return setup().train_args(dir, "lst", 12, with({"--method.lst_layers", "1", "--cache.dir", cache}, extra));
}

// Rewrites one row of the store's first hidden layer with +inf (f16 0x7C00), through HDF5: the file stays
// well-formed (checksums included), only its values are out of range, as an f16 overflow would leave them.
void poison_row(const std::string& store, uint64_t row) {
  int64_t layer = 0;
  {
    ladder::data::ActivationStoreReader r(store);
    ASSERT_FALSE(r.identity().layers.empty());
    ASSERT_EQ(r.identity().dtype, core::DType::f16);
    layer = r.identity().layers[0];
  }
  const hid_t f = H5Fopen(store.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << store;
  const hid_t ds = H5Dopen2(f, ("/hidden/" + std::to_string(layer)).c_str(), H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  const hid_t space = H5Dget_space(ds);
  hsize_t dims[3] = {0, 0, 0};
  ASSERT_EQ(H5Sget_simple_extent_dims(space, dims, nullptr), 3);
  hsize_t start[3] = {row, 0, 0}, count[3] = {1, dims[1], dims[2]};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  const hid_t mem = H5Screate_simple(3, count, nullptr);
  std::vector<uint16_t> inf(size_t(dims[1] * dims[2]), 0x7C00);
  const hid_t type = H5Dget_type(ds);
  EXPECT_GE(H5Dwrite(ds, type, mem, space, H5P_DEFAULT, inf.data()), 0);
  H5Tclose(type);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(ds);
  ASSERT_GE(H5Fclose(f), 0);
}

// The step the error names ("step N: ..."); -1 when there is none.
int error_step(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(step ([0-9]+): the (training loss|gradient norm) is)"))) return -1;
  return std::stoi(m[1].str());
}

// Every checkpoint of the run is from before `bad_step`, holds finite parameters, and `latest` is the newest.
void expect_no_checkpoint_from(const std::string& dir, int bad_step) {
  core::CheckpointDirectory cd(dir + "/checkpoints");
  int64_t newest = 0;
  for (const auto& p : cd.list()) {
    const core::CheckpointData ck = core::read_checkpoint(p);
    EXPECT_LT(ck.step, bad_step) << p;
    newest = std::max(newest, ck.step);
    for (const auto& [name, t] : ck.params)
      for (float v : t.to_floats()) ASSERT_TRUE(std::isfinite(v)) << p << " " << name;
  }
  if (newest > 0) {
    const auto latest = cd.latest();
    ASSERT_TRUE(latest);
    EXPECT_EQ(core::read_checkpoint(*latest).step, newest);
  }
  if (auto best = cd.best()) {
    EXPECT_LT(core::read_checkpoint(*best).step, bad_step);
  }
}

// A store poisoned at row 37 of 96 (batches of 8: some step of the first epoch reads it).
const std::string& poisoned_cache() {
  static const std::string cache = [] {
    const std::string c = setup().root + "/poisoned_cache";
    const Result r = run_ladder(with({"cache"}, lst_store_args(c, setup().root + "/cache_run")), setup().root + "/cache.log");
    EXPECT_EQ(r.rc, 0) << r.out;
    poison_row(c + "/train.h5", 37);
    return c;
  }();
  return cache;
}

}  // namespace

// `ladder cache` checksums its stores unless cache.checksum = false.
TEST(TrainFaults, CacheChecksumsTheStoreUnlessAskedNot) {
  const std::string plain = setup().root + "/plain_cache";
  const Result r = run_ladder(with({"cache"}, lst_store_args(plain, setup().root + "/plain_run", {"--cache.checksum", "false"})),
                              setup().root + "/plain.log");
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const auto& [cache, on] : {std::pair{poisoned_cache(), true}, std::pair{plain, false}})
    for (const char* ds : {"/hidden/0", "/input_ids", "/labels"})
      EXPECT_EQ(core::Hdf5File::open_read(cache + "/dev.h5").open_dataset(ds).checksummed(), on) << cache << " " << ds;
}

TEST(TrainFaults, NonFiniteLossStopsTheRunNamingTheStepAndLeavesNoCheckpointFromIt) {
  const std::string dir = setup().root + "/nan_run";
  const Result r = run_ladder(with({"train"}, lst_store_args(poisoned_cache(), dir, {"--cache.use", "true", "--checkpoint.every", "1"})),
                              setup().root + "/nan.log");
  EXPECT_EQ(r.rc, 1) << r.out;
  const int step = error_step(r.out);
  ASSERT_GE(step, 1) << r.out;
  EXPECT_LE(step, 12) << r.out;
  EXPECT_NE(r.out.find("gradient norm is"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the first non-finite gradient is that of '"), std::string::npos) << r.out;
  expect_no_checkpoint_from(dir, step);
  if (step > 1) {
    EXPECT_NE(r.out.find("the last checkpoint is " + dir + "/checkpoints/" + core::CheckpointDirectory::file_name(step - 1)),
              std::string::npos) << r.out;
  }
}

TEST(TrainFaults, NonFiniteLossStopsEveryDataParallelRank) {
  const std::string dir = setup().root + "/nan_dp2";
  // Batches of 4 per rank: the same global batches of 8 as one process, so the same step meets the row.
  const Result r = run_ladder(with({"train"}, lst_store_args(poisoned_cache(), dir,
                                                             {"--cache.use", "true", "--checkpoint.every", "1",
                                                              "--train.batch_size", "4", "--train.threads", "1"})),
                              setup().root + "/nan_dp2.log", std::string(LADDER_MPIEXEC) + " -np 2");
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.rc, 124) << "a rank hung after the non-finite step:\n" << r.out;
  const int step = error_step(r.out);
  ASSERT_GE(step, 1) << r.out;
  expect_no_checkpoint_from(dir, step);
}

TEST(TrainFaults, LoneTruncatedCheckpointIsAnErrorUnlessStartOver) {
  const std::string dir = setup().root + "/lone";
  const auto args = [&](int steps, std::vector<std::string> extra) {
    return with({"train"}, setup().train_args(dir, "lora", steps, with({"--checkpoint.every", "2", "--checkpoint.keep_last", "1"}, extra)));
  };
  ASSERT_EQ(run_ladder(args(4, {}), dir + ".log").rc, 0);
  const std::string ck = dir + "/checkpoints/" + core::CheckpointDirectory::file_name(4);
  ASSERT_EQ(core::CheckpointDirectory(dir + "/checkpoints").list(), std::vector<std::string>{ck});
  fs::resize_file(ck, fs::file_size(ck) / 2);
  const auto damaged = fs::file_size(ck);

  const Result r = run_ladder(args(6, {}), dir + ".2.log");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("none is readable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(ck + ": not a readable HDF5 file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--checkpoint.start_over"), std::string::npos) << r.out;
  EXPECT_EQ(fs::file_size(ck), damaged) << "the damaged checkpoint was written over";
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/" + core::CheckpointDirectory::file_name(6)));

  const Result again = run_ladder(args(6, {"--checkpoint.start_over", "true"}), dir + ".3.log");
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(again.out.find("resumed from"), std::string::npos) << again.out;
  const auto done = core::read_checkpoint(dir + "/checkpoints/" + core::CheckpointDirectory::file_name(6));
  EXPECT_EQ(done.metrics.at("loss").size(), 6u);  // trained from step 0
}

TEST(TrainFaults, DamagedLatestFallsBackToAnOlderIntactCheckpoint) {
  const std::string dir = setup().root + "/fallback";
  const auto args = [&](int steps) {
    return with({"train"}, setup().train_args(dir, "lora", steps, {"--checkpoint.every", "2", "--checkpoint.keep_last", "2"}));
  };
  ASSERT_EQ(run_ladder(args(4), dir + ".log").rc, 0);
  const std::string ck4 = dir + "/checkpoints/" + core::CheckpointDirectory::file_name(4);
  fs::resize_file(ck4, fs::file_size(ck4) / 2);
  const Result r = run_ladder(args(6), dir + ".2.log");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from " + dir + "/checkpoints/" + core::CheckpointDirectory::file_name(2)), std::string::npos) << r.out;
}

TEST(BaseWeights, CheckpointsRecordTheContentHashAndRefuseOtherWeights) {
  const auto& s = setup();
  const std::string dir = s.root + "/hashed";
  ASSERT_EQ(run_ladder(with({"train"}, s.train_args(dir, "lora", 2)), dir + ".log").rc, 0);
  const std::string ck_path = dir + "/checkpoints/" + core::CheckpointDirectory::file_name(2);
  const core::CheckpointData ck = core::read_checkpoint(ck_path);
  const std::string hash = apps::base_weights_hash(s.model);
  EXPECT_EQ(ck.backbone_hash, hash);
  EXPECT_EQ(hash.rfind("xxh64:", 0), 0u) << hash;

  // The same files under another path are the same weights; one changed byte makes other weights.
  const std::string same = s.root + "/model_copy", other = s.root + "/model_other";
  for (const auto& d : {same, other}) {
    fs::remove_all(d);
    fs::copy(s.model, d, fs::copy_options::recursive);
  }
  {
    std::fstream f(other + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    const char c = char(f.get());
    f.seekp(-1, std::ios::end);
    f.put(char(c ^ 0x01));
  }
  const std::string other_hash = apps::base_weights_hash(other);
  ASSERT_NE(other_hash, hash);

  const Result resumed = run_ladder(with({"train"}, s.train_args(dir, "lora", 4, {"--model.dir", other})), dir + ".2.log");
  EXPECT_EQ(resumed.rc, 1) << resumed.out;
  for (const auto& part : {hash, other_hash, s.model, other, ck_path})
    EXPECT_NE(resumed.out.find(part), std::string::npos) << part << " not in:\n" << resumed.out;

  testing::internal::CaptureStdout();
  const std::string eval_err = error_of([&] { apps::eval_command({"--checkpoint", ck_path, "--model.dir", other}); });
  const std::string export_err = error_of([&] {
    apps::export_command({"--checkpoint", ck_path, "--format", "merged", "--output", s.root + "/merged_other", "--model.dir", other});
  });
  const int same_rc = apps::eval_command({"--checkpoint", ck_path, "--model.dir", same, "--report", s.root + "/same.json"});
  testing::internal::GetCapturedStdout();
  for (const auto& err : {eval_err, export_err})
    for (const auto& part : {hash, other_hash, s.model, other, ck_path}) EXPECT_NE(err.find(part), std::string::npos) << part << " not in: " << err;
  EXPECT_FALSE(fs::exists(s.root + "/merged_other"));
  EXPECT_EQ(same_rc, 0);
}

// A checkpoint from before content hashes (backbone_hash holds the model type) cannot be checked: accepted
// with a warning, so old runs still evaluate.
TEST(BaseWeights, OldCheckpointWithTheModelTypeIsAcceptedWithAWarning) {
  const auto& s = setup();
  const std::string dir = s.root + "/old_hash";
  ASSERT_EQ(run_ladder(with({"train"}, s.train_args(dir, "lora", 2)), dir + ".log").rc, 0);
  core::CheckpointData ck = core::read_checkpoint(dir + "/checkpoints/" + core::CheckpointDirectory::file_name(2));
  ck.backbone_hash = "bert";
  const std::string old = s.root + "/old.h5";
  core::write_checkpoint(old, ck);
  const Result r = run_ladder({"eval", "--checkpoint", old, "--report", s.root + "/old.json"}, s.root + "/old.log");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("records no hash of its base weights (backbone_hash 'bert'"), std::string::npos) << r.out;
}
