// HDF5 checkpoints: a bit-exact round trip of every field, errors that name the file for bad input, the
// directory's rotation / best tracking / latest pointer, a writer killed with SIGKILL mid-write, and h5dump
// reading the file without ladder.
#include <gtest/gtest.h>

#include "tests/support/test_paths.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/io/checkpoint.h"
#include "core/io/hdf5_file.h"
#include "tests/support/hdf5_damage.h"
#include "tests/support/tiny_models.h"

namespace {

namespace core = ladder::core;
namespace fs = std::filesystem;
using core::CheckpointData;
using core::CheckpointDirectory;
using core::DType;
using core::MemCategory;
using core::Tensor;
using ladder::test::temp_dir;

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

Tensor ramp_tensor(const core::Shape& shape, float scale) {
  std::vector<float> v(size_t(core::shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * std::sin(0.37f * float(i) + 0.1f) * float(1 + i % 7);
  if (!v.empty()) v[0] = -0.0f;  // signed zero must survive
  if (v.size() > 2) v[2] = 1e-40f;  // so must a denormal
  return Tensor::from_floats(v, shape, MemCategory::workspace);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

CheckpointData sample_checkpoint(int64_t step) {
  CheckpointData d;
  d.step = step;
  d.epoch = 3;
  d.samples_seen = 123456789012LL;
  d.config = "[train]\nlr = 1e-4\nmethod = lora+bitfit\n\n[model]\npath = /models/bert-base-uncased\n";
  d.method = "lora+bitfit";
  d.dp = 2;
  d.tp = 4;
  d.backbone_id = "bert-base-uncased";
  d.backbone_hash = "sha256:0123456789abcdef";
  d.optimizer_kind = "adamw";
  d.params = {
      {"encoder.layer.0.attention.self.query.lora_A", ramp_tensor({4, 16}, 0.5f)},
      {"encoder.layer.0.attention.self.query.lora_B", ramp_tensor({16, 4}, -0.25f)},
      {"bias.scalar_like", ramp_tensor({1}, 3.0f)},
      {"classifier.weight", ramp_tensor({2, 3, 5}, 1.5f)},
      {"a.empty", Tensor::empty({0, 8}, DType::f32, MemCategory::workspace)},
  };
  d.optimizer = {
      {"encoder.layer.0.attention.self.query.lora_A/exp_avg", ramp_tensor({4, 16}, 0.01f)},
      {"encoder.layer.0.attention.self.query.lora_A/exp_avg_sq", ramp_tensor({4, 16}, 0.001f)},
      {"classifier.weight/exp_avg", ramp_tensor({2, 3, 5}, 0.02f)},
      {"classifier.weight/exp_avg_sq", ramp_tensor({2, 3, 5}, 0.002f)},
  };
  d.rng = {{"torch_cpu", {0, 1, 2, 255, 128, 7}}, {"dropout.rank0", {}}, {"mt19937", std::vector<uint8_t>(5000, 0xab)}};
  d.sampler = {{"epoch_permutation", {5, 3, 1, 0, 4, 2, -1, INT64_MAX}}, {"position", {42}}};
  d.recipe_state = {{"rows_read", {7, INT64_MIN}}};
  d.metrics = {{"loss", {2.3, 1.7, 0.9, 0.81}}, {"lr", {1e-4, 9e-5}}, {"eval_accuracy", {0.5, 0.875}}, {"empty", {}}};
  d.extra_attrs = {{"best_metric", "0.875"}, {"note", "unicode ok: héllo"}};
  return d;
}

void expect_same(const CheckpointData& a, const CheckpointData& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.samples_seen, b.samples_seen);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.dp, b.dp);
  EXPECT_EQ(a.tp, b.tp);
  EXPECT_EQ(a.backbone_id, b.backbone_id);
  EXPECT_EQ(a.backbone_hash, b.backbone_hash);
  EXPECT_EQ(a.optimizer_kind, b.optimizer_kind);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    EXPECT_EQ(a.params[i].first, b.params[i].first);
    EXPECT_TRUE(same_bits(a.params[i].second, b.params[i].second)) << a.params[i].first;
  }
  ASSERT_EQ(a.optimizer.size(), b.optimizer.size());
  for (size_t i = 0; i < a.optimizer.size(); ++i) {
    EXPECT_EQ(a.optimizer[i].first, b.optimizer[i].first);
    EXPECT_TRUE(same_bits(a.optimizer[i].second, b.optimizer[i].second)) << a.optimizer[i].first;
  }
  EXPECT_EQ(a.rng, b.rng);
  EXPECT_EQ(a.sampler, b.sampler);
  EXPECT_EQ(a.recipe_state, b.recipe_state);
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, v] : a.metrics) {
    ASSERT_TRUE(b.metrics.count(k)) << k;
    const auto& w = b.metrics.at(k);
    ASSERT_EQ(v.size(), w.size()) << k;
    EXPECT_EQ(std::memcmp(v.data(), w.data(), v.size() * sizeof(double)), 0) << k;
  }
  EXPECT_EQ(a.extra_attrs, b.extra_attrs);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Checkpoint, RoundTripEveryFieldBitExact) {
  const std::string path = temp_dir("ckpt_roundtrip") + "/c.h5";
  const CheckpointData d = sample_checkpoint(1234);
  core::write_checkpoint(path, d);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(core::checkpoint_problem(path), "");
  const CheckpointData r = core::read_checkpoint(path);
  expect_same(d, r);
  EXPECT_EQ(r.params[0].second.category(), MemCategory::trainable_weights);
  EXPECT_EQ(r.optimizer[0].second.category(), MemCategory::optimizer_state);

  // The schema with the plain HDF5 layer: names with dots are dataset names, attributes are typed.
  auto f = core::Hdf5File::open_read(path);
  EXPECT_EQ(f.get_attr_string("format"), "ladder-checkpoint");
  EXPECT_EQ(f.get_attr_int("version"), 1);
  EXPECT_EQ(f.get_attr_int("step"), 1234);
  EXPECT_EQ(f.get_attr_string("layout"), "dp=2,tp=4");
  EXPECT_EQ(f.get_attr_int("dp"), 2);
  EXPECT_EQ(f.get_attr_int("tp"), 4);
  EXPECT_EQ(f.get_attr_string("optimizer_kind"), "adamw");
  EXPECT_TRUE(f.exists("/params/encoder.layer.0.attention.self.query.lora_A"));
  EXPECT_TRUE(f.is_group("/optimizer/classifier.weight"));
  EXPECT_EQ(f.list_group("/optimizer/classifier.weight"), (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  EXPECT_EQ(f.open_dataset("/params/classifier.weight").dims(), (std::vector<uint64_t>{2, 3, 5}));
  EXPECT_EQ(f.open_dataset("/params/classifier.weight").dtype(), DType::f32);
}

TEST(Checkpoint, NonF32ParamsAreStoredAsF32AndQuantizedStatesKeepTheirDtype) {
  const std::string path = temp_dir("ckpt_dtypes") + "/c.h5";
  CheckpointData d;
  d.params = {{"w", ramp_tensor({3, 4}, 1.0f).to(DType::bf16, MemCategory::workspace)}};
  d.optimizer = {{"w/exp_avg/blocks", Tensor::from_ints({1, -2, 3, 4}, {4}, MemCategory::workspace).to(DType::i8, MemCategory::workspace)},
                 {"w/exp_avg/scales", ramp_tensor({2}, 0.1f)}};
  core::write_checkpoint(path, d);
  const auto r = core::read_checkpoint(path);
  ASSERT_EQ(r.params.size(), 1u);
  EXPECT_EQ(r.params[0].second.dtype(), DType::f32);
  EXPECT_EQ(r.params[0].second.to_floats(), d.params[0].second.to_floats());
  ASSERT_EQ(r.optimizer.size(), 2u);
  EXPECT_EQ(r.optimizer[0].first, "w/exp_avg/blocks");
  EXPECT_TRUE(same_bits(r.optimizer[0].second, d.optimizer[0].second));
  EXPECT_EQ(r.optimizer[1].first, "w/exp_avg/scales");
}

TEST(Checkpoint, OptimizerKindRoundTripsAndIsNoExtraAttribute) {
  const std::string dir = temp_dir("ckpt_kind");
  CheckpointData d = sample_checkpoint(5);
  d.optimizer_kind = "adamw8bit";
  d.optimizer = {{"w/state1", Tensor::from_ints({1, -2, 3, 4}, {4}, MemCategory::workspace).to(DType::i8, MemCategory::workspace)},
                 {"w/absmax1", ramp_tensor({1}, 0.5f)}};
  core::write_checkpoint(dir + "/a.h5", d);
  const auto r = core::read_checkpoint(dir + "/a.h5");
  EXPECT_EQ(r.optimizer_kind, "adamw8bit");
  EXPECT_EQ(r.extra_attrs, d.extra_attrs);  // read as the kind, not as an extra attribute
  ASSERT_EQ(r.optimizer.size(), 2u);
  EXPECT_EQ(r.optimizer[0].second.dtype(), DType::i8);
  EXPECT_EQ(r.optimizer[1].second.dtype(), DType::f32);
  // A default CheckpointData records AdamW.
  EXPECT_EQ(CheckpointData{}.optimizer_kind, "adamw");
  d.optimizer_kind = "";
  expect_error([&] { core::write_checkpoint(dir + "/b.h5", d); }, {dir + "/b.h5", "optimizer kind"});
  d.optimizer_kind = "adamw";
  d.extra_attrs["optimizer_kind"] = "sgd";
  expect_error([&] { core::write_checkpoint(dir + "/c.h5", d); }, {"'optimizer_kind'", "reserved"});
}

TEST(Checkpoint, FileWithoutOptimizerKindReadsAsAdamW) {
  // The layout checkpoints had before the optimizer kind was recorded, written with the plain HDF5 layer.
  const std::string path = temp_dir("ckpt_no_kind") + "/old.h5";
  {
    auto f = core::Hdf5File::create(path);
    f.set_attr("format", std::string("ladder-checkpoint"));
    f.set_attr("version", int64_t(1));
    f.set_attr("step", int64_t(10));
    f.set_attr("epoch", int64_t(0));
    f.set_attr("samples_seen", int64_t(320));
    f.set_attr("config", std::string("[train]\nlr = 1e-4\n"));
    f.set_attr("method", std::string("lora"));
    f.set_attr("layout", std::string("dp=1,tp=1"));
    f.set_attr("dp", int64_t(1));
    f.set_attr("tp", int64_t(1));
    f.set_attr("backbone_id", std::string("bert"));
    f.set_attr("backbone_hash", std::string("sha256:00"));
    for (const char* g : {"/params", "/optimizer", "/rng", "/sampler", "/metrics"}) f.create_group(g, true);
    const Tensor w = ramp_tensor({2, 3}, 1.0f), m = ramp_tensor({2, 3}, 0.01f), v = ramp_tensor({2, 3}, 0.001f);
    f.create_dataset("/params/w", DType::f32, {2, 3}).write_all(w.raw());
    f.create_group("/optimizer/w", true);
    f.create_dataset("/optimizer/w/exp_avg", DType::f32, {2, 3}).write_all(m.raw());
    f.create_dataset("/optimizer/w/exp_avg_sq", DType::f32, {2, 3}).write_all(v.raw());
    f.commit();
  }
  ASSERT_FALSE(core::Hdf5File::open_read(path).has_attr("optimizer_kind"));
  const auto r = core::read_checkpoint(path);
  EXPECT_EQ(r.optimizer_kind, "adamw");
  EXPECT_TRUE(r.extra_attrs.empty());
  ASSERT_EQ(r.optimizer.size(), 2u);
  EXPECT_EQ(r.optimizer[0].first, "w/exp_avg");
  EXPECT_EQ(r.optimizer[1].first, "w/exp_avg_sq");
  EXPECT_EQ(r.optimizer[1].second.dtype(), DType::f32);
  EXPECT_TRUE(same_bits(r.optimizer[1].second, ramp_tensor({2, 3}, 0.001f)));
}

TEST(Checkpoint, InvalidNamesAreErrors) {
  const std::string dir = temp_dir("ckpt_names");
  CheckpointData d;
  d.params = {{"a/b", ramp_tensor({2}, 1.0f)}};
  expect_error([&] { core::write_checkpoint(dir + "/a.h5", d); }, {dir + "/a.h5", "'a/b'"});
  d.params = {{"x", ramp_tensor({2}, 1.0f)}, {"x", ramp_tensor({2}, 1.0f)}};
  expect_error([&] { core::write_checkpoint(dir + "/b.h5", d); }, {"'x'", "twice"});
  d.params = {};
  d.optimizer = {{"no_state", ramp_tensor({2}, 1.0f)}};
  expect_error([&] { core::write_checkpoint(dir + "/c.h5", d); }, {"'no_state'"});
  d.optimizer = {};
  d.extra_attrs = {{"step", "7"}};
  expect_error([&] { core::write_checkpoint(dir + "/d.h5", d); }, {"'step'", "reserved"});
  // Nothing half-written is left behind.
  for (const char* n : {"a.h5", "b.h5", "c.h5", "d.h5", "a.h5.tmp", "b.h5.tmp", "c.h5.tmp"})
    EXPECT_FALSE(fs::exists(dir + "/" + n)) << n;
}

TEST(Checkpoint, BadInputErrorsNameTheFile) {
  const std::string dir = temp_dir("ckpt_bad");
  const std::string missing = dir + "/missing.h5";
  expect_error([&] { core::read_checkpoint(missing); }, {missing, "no such"});

  const std::string text = dir + "/text.h5";
  std::ofstream(text) << "this is not an HDF5 file\n";
  expect_error([&] { core::read_checkpoint(text); }, {text, "HDF5"});

  const std::string noformat = dir + "/noformat.h5";
  {
    auto f = core::Hdf5File::create(noformat);
    f.set_attr("step", int64_t(3));
    f.commit();
  }
  expect_error([&] { core::read_checkpoint(noformat); }, {noformat, "'format'"});

  const std::string other = dir + "/other.h5";
  {
    auto f = core::Hdf5File::create(other);
    f.set_attr("format", std::string("ladder-encodings"));
    f.set_attr("version", int64_t(1));
    f.commit();
  }
  expect_error([&] { core::read_checkpoint(other); }, {other, "ladder-encodings"});

  const std::string v2 = dir + "/v2.h5";
  {
    auto f = core::Hdf5File::create(v2);
    f.set_attr("format", std::string("ladder-checkpoint"));
    f.set_attr("version", int64_t(2));
    f.commit();
  }
  expect_error([&] { core::read_checkpoint(v2); }, {v2, "version 2"});

  const std::string noparams = dir + "/noparams.h5";
  {
    auto f = core::Hdf5File::create(noparams);
    f.set_attr("format", std::string("ladder-checkpoint"));
    f.set_attr("version", int64_t(1));
    f.commit();
  }
  expect_error([&] { core::read_checkpoint(noparams); }, {noparams, "'step'"});

  // Truncated: the first half of a real checkpoint with a big tensor.
  const std::string full = dir + "/full.h5", cut = dir + "/truncated.h5";
  CheckpointData d = sample_checkpoint(5);
  d.params.emplace_back("big", ramp_tensor({256, 256}, 1.0f));
  core::write_checkpoint(full, d);
  const std::string bytes = slurp(full);
  std::ofstream(cut, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  expect_error([&] { core::read_checkpoint(cut); }, {cut});
  EXPECT_NE(core::checkpoint_problem(cut), "");
  EXPECT_NE(core::checkpoint_problem(text), "");
  EXPECT_NE(core::checkpoint_problem(noformat), "");
  EXPECT_EQ(core::checkpoint_problem(full), "");
}

TEST(CheckpointDirectory, KeepsTheNewestAndTheBest) {
  const std::string dir = temp_dir("ckpt_rotate");
  CheckpointDirectory cd(dir, /*keep_last=*/2, CheckpointDirectory::Better::higher);
  EXPECT_FALSE(cd.latest());
  EXPECT_FALSE(cd.best());
  const double acc[] = {0.50, 0.90, 0.70, 0.60, 0.80};
  for (int i = 0; i < 5; ++i) {
    const std::string p = cd.save(sample_checkpoint(100 * (i + 1)), acc[i]);
    EXPECT_EQ(p, dir + "/" + CheckpointDirectory::file_name(100 * (i + 1)));
  }
  EXPECT_EQ(CheckpointDirectory::file_name(100), "step-00000100.h5");
  // Newest two (400, 500) plus the best (200).
  EXPECT_EQ(cd.list(), (std::vector<std::string>{dir + "/step-00000200.h5", dir + "/step-00000400.h5",
                                                 dir + "/step-00000500.h5"}));
  ASSERT_TRUE(cd.latest());
  EXPECT_EQ(*cd.latest(), dir + "/step-00000500.h5");
  EXPECT_EQ(slurp(dir + "/latest"), "step-00000500.h5\n");
  ASSERT_TRUE(cd.best());
  EXPECT_EQ(*cd.best(), dir + "/best.h5");
  EXPECT_EQ(core::read_checkpoint(dir + "/best.h5").step, 200);
  EXPECT_EQ(*cd.best_metric(), 0.90);
  // Nothing else lies in the folder: no temporaries.
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++n;
    EXPECT_EQ(e.path().extension() == ".tmp", false) << e.path();
  }
  EXPECT_EQ(n, 5u);  // 3 step files, best.h5, latest

  // A new best replaces best.h5; the old best step file then rotates out.
  cd.save(sample_checkpoint(600), 0.95);
  EXPECT_EQ(core::read_checkpoint(*cd.best()).step, 600);
  EXPECT_EQ(cd.list(), (std::vector<std::string>{dir + "/step-00000500.h5", dir + "/step-00000600.h5"}));
  // A save without a metric never becomes the best.
  cd.save(sample_checkpoint(700));
  EXPECT_EQ(core::read_checkpoint(*cd.best()).step, 600);
  EXPECT_EQ(cd.list(), (std::vector<std::string>{dir + "/step-00000600.h5", dir + "/step-00000700.h5"}));

  // A resumed run picks the best so far up from best.h5.
  CheckpointDirectory again(dir, 2, CheckpointDirectory::Better::higher);
  ASSERT_TRUE(again.best_metric());
  EXPECT_EQ(*again.best_metric(), 0.95);
  again.save(sample_checkpoint(800), 0.94);  // not better
  EXPECT_EQ(core::read_checkpoint(*again.best()).step, 600);
  EXPECT_EQ(again.list(), (std::vector<std::string>{dir + "/step-00000600.h5", dir + "/step-00000700.h5",
                                                    dir + "/step-00000800.h5"}));
  again.save(sample_checkpoint(900), 0.1);
  EXPECT_EQ(again.list(), (std::vector<std::string>{dir + "/step-00000600.h5", dir + "/step-00000800.h5",
                                                    dir + "/step-00000900.h5"}));
}

TEST(CheckpointDirectory, LowerIsBetter) {
  const std::string dir = temp_dir("ckpt_lower");
  CheckpointDirectory cd(dir, 1, CheckpointDirectory::Better::lower);
  cd.save(sample_checkpoint(1), 2.0);
  cd.save(sample_checkpoint(2), 0.5);
  cd.save(sample_checkpoint(3), 0.7);
  cd.save(sample_checkpoint(4), std::nan(""));  // NaN never wins
  EXPECT_EQ(core::read_checkpoint(*cd.best()).step, 2);
  EXPECT_EQ(*cd.best_metric(), 0.5);
  EXPECT_EQ(cd.list(), (std::vector<std::string>{dir + "/step-00000002.h5", dir + "/step-00000004.h5"}));
  // The selection metric travels in the file.
  EXPECT_EQ(core::read_checkpoint(*cd.best()).extra_attrs.at("selection_metric"), "0.5");
  EXPECT_THROW(CheckpointDirectory(dir, 0), std::invalid_argument);
}

TEST(CheckpointDirectory, LatestSkipsTemporariesAndDamagedFiles) {
  const std::string dir = temp_dir("ckpt_latest");
  CheckpointDirectory cd(dir, 5);
  cd.save(sample_checkpoint(10));
  cd.save(sample_checkpoint(20));
  // Newer files that are not checkpoints, and a temporary, appear later (a crash, a bad copy).
  std::ofstream(dir + "/step-00000030.h5") << "garbage";
  {
    auto f = core::Hdf5File::create(dir + "/step-00000040.h5");
    f.set_attr("step", int64_t(40));
    f.commit();
  }
  fs::copy_file(dir + "/step-00000020.h5", dir + "/step-00000050.h5.tmp");
  std::ofstream(dir + "/latest") << "step-00000040.h5\n";  // even the pointer names a bad one
  testing::internal::CaptureStderr();
  auto latest = cd.latest();
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, dir + "/step-00000020.h5");
  EXPECT_NE(err.find("step-00000040.h5"), std::string::npos) << err;
  EXPECT_NE(err.find("step-00000030.h5"), std::string::npos) << err;
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_EQ(err.find(".tmp"), std::string::npos) << err;  // temporaries are never even opened
  EXPECT_EQ(cd.list().size(), 4u);  // 10, 20, 30, 40: list() does not validate

  // With the pointer gone, the newest valid step file wins.
  fs::remove(dir + "/latest");
  testing::internal::CaptureStderr();
  latest = cd.latest();
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(*latest, dir + "/step-00000020.h5");
}

// A flipped byte in a parameter, an optimizer state or a metric series is a read error naming the file, the
// dataset and the checksum, not a checkpoint that resumes with a wrong value.
TEST(Checkpoint, FlippedByteIsAChecksumErrorNamingTheDataset) {
  const std::string dir = temp_dir("ckpt_flip");
  for (const std::string ds : {"/params/classifier.weight", "/optimizer/classifier.weight/exp_avg", "/metrics/loss",
                               "/sampler/position"}) {
    const std::string path = dir + "/c.h5";
    core::write_checkpoint(path, sample_checkpoint(3));
    EXPECT_TRUE(core::Hdf5File::open_read(path).exists(ds));
    ladder::test::flip_byte(path, ladder::test::first_chunk_offset(path, ds) + 2, 0x04);
    EXPECT_EQ(core::checkpoint_problem(path), "");  // the structure is intact: only a read finds it
    expect_error([&] { core::read_checkpoint(path); }, {path, "'" + ds + "'", "Fletcher-32 checksum does not match", "corrupt"});
  }
}

// What the checksum costs a checkpoint (run by hand: --gtest_also_run_disabled_tests
// --gtest_filter=CheckpointBench.*): 256 MB of f32 tensors in checkpoint-sized chunks, written (fsynced, as
// a checkpoint) and read back, with and without Fletcher-32, alternating.
TEST(CheckpointBench, DISABLED_ChecksumCostOfSaveAndLoad256MB) {
  const std::string dir = temp_dir("ckpt_bench");
  std::vector<Tensor> ts;
  for (int i = 0; i < 16; ++i) ts.push_back(ramp_tensor({1024, 4096}, 0.001f * float(i + 1)));
  const double mb = 16.0 * 1024 * 4096 * 4 / 1e6;
  using clock = std::chrono::steady_clock;
  for (int rep = 0; rep < 3; ++rep)
    for (bool sum : {false, true}) {
      const std::string path = dir + "/b.h5";
      const auto t0 = clock::now();
      {
        auto f = core::Hdf5File::create(path);
        for (size_t i = 0; i < ts.size(); ++i)
          f.create_dataset("/t" + std::to_string(i), DType::f32, {1024, 4096}, 64, sum).write_all(ts[i].raw());
        f.commit(/*durable=*/true);
      }
      const double w = std::chrono::duration<double>(clock::now() - t0).count();
      std::vector<float> back(1024 * 4096);
      const auto t1 = clock::now();
      {
        auto f = core::Hdf5File::open_read(path);
        for (size_t i = 0; i < ts.size(); ++i) f.open_dataset("/t" + std::to_string(i)).read_all(back.data());
      }
      const double r = std::chrono::duration<double>(clock::now() - t1).count();
      std::printf("checksum %s: save %.0f MB/s, load %.0f MB/s (page cache)\n", sum ? "on " : "off", mb / w, mb / r);
    }
}

// When every checkpoint is damaged, latest() finds none but reports each file and why, so that a resume can
// tell "nothing to resume" from "nothing readable to resume".
TEST(CheckpointDirectory, LatestReportsEveryUnreadableFile) {
  const std::string dir = temp_dir("ckpt_unreadable");
  CheckpointDirectory cd(dir, 5);
  std::vector<std::string> unreadable;
  EXPECT_FALSE(cd.latest(&unreadable));
  EXPECT_TRUE(unreadable.empty());  // an empty folder: nothing to report
  const std::string ten = cd.save(sample_checkpoint(10));
  fs::resize_file(ten, fs::file_size(ten) / 2);
  std::ofstream(dir + "/step-00000020.h5") << "garbage";
  testing::internal::CaptureStderr();
  const auto latest = cd.latest(&unreadable);
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(latest);
  ASSERT_EQ(unreadable.size(), 2u);
  EXPECT_NE(unreadable[0].find(dir + "/step-00000010.h5: not a readable HDF5 file"), std::string::npos) << unreadable[0];
  EXPECT_NE(unreadable[1].find(dir + "/step-00000020.h5"), std::string::npos) << unreadable[1];
}

// A writer killed with SIGKILL half-way through a save leaves the previous checkpoint as the latest.
TEST(CheckpointDirectory, SigkillDuringSaveKeepsThePreviousLatest) {
  const std::string dir = temp_dir("ckpt_sigkill");
  const CheckpointData first = sample_checkpoint(1);
  {
    CheckpointDirectory cd(dir, 3);
    cd.save(first);
  }
  const std::string tmp = dir + "/step-00000002.h5.tmp";
  std::fflush(nullptr);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // 64 tensors of 4 MiB: far more than the parent needs to see before it kills.
    CheckpointData big = sample_checkpoint(2);
    for (int i = 0; i < 64; ++i)
      big.params.emplace_back("big." + std::to_string(i), Tensor::empty({1024, 1024}, DType::f32, MemCategory::workspace));
    CheckpointDirectory cd(dir, 3);
    cd.save(big);
    _exit(0);
  }
  // Kill once the temporary exists and has data in it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::error_code ec;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(tmp, ec) && fs::file_size(tmp, ec) > (2u << 20)) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child finished its save before it could be killed; status " << status;
  EXPECT_TRUE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(dir + "/step-00000002.h5"));

  CheckpointDirectory cd(dir, 3);
  const auto latest = cd.latest();
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, dir + "/step-00000001.h5");
  EXPECT_EQ(slurp(dir + "/latest"), "step-00000001.h5\n");
  expect_same(first, core::read_checkpoint(*latest));
  EXPECT_EQ(cd.list(), (std::vector<std::string>{dir + "/step-00000001.h5"}));

  // The next save replaces the stale temporary and completes.
  cd.save(sample_checkpoint(2));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(*cd.latest(), dir + "/step-00000002.h5");
}

TEST(Checkpoint, H5dumpReadsTheSchema) {
  const std::string dir = temp_dir("ckpt_h5dump");
  const std::string path = dir + "/c.h5";
  core::write_checkpoint(path, sample_checkpoint(77));
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0) {
    LADDER_SKIP_OR_FAIL() << "h5dump not on PATH (apt-get install hdf5-tools); skipping the external check";
  }
  const std::string out = dir + "/dump.txt";
  const std::string cmd = "h5dump -H '" + path + "' > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(out);
  const std::string h = slurp(out);
  for (const char* s : {"GROUP \"params\"", "DATASET \"encoder.layer.0.attention.self.query.lora_A\"",
                        "GROUP \"optimizer\"", "GROUP \"classifier.weight\"", "DATASET \"exp_avg_sq\"",
                        "GROUP \"rng\"", "GROUP \"sampler\"", "GROUP \"metrics\"", "ATTRIBUTE \"format\"",
                        "ATTRIBUTE \"samples_seen\"", "ATTRIBUTE \"backbone_hash\"", "ATTRIBUTE \"layout\"",
                        "H5T_IEEE_F32LE", "H5T_STD_I64LE", "H5T_IEEE_F64LE", "H5T_STD_U8LE"})
    EXPECT_NE(h.find(s), std::string::npos) << s << "\n" << h;
  // Addressed by path, the group prints under its absolute name.
  const std::string cmd1 = "h5dump -H -g /params '" + path + "' > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd1.c_str()), 0) << cmd1 << "\n" << slurp(out);
  EXPECT_NE(slurp(out).find("GROUP \"/params\""), std::string::npos) << slurp(out);
  // Attribute values and a parameter's data print too.
  const std::string cmd2 = "h5dump -a format -a config -d '/params/bias.scalar_like' '" + path + "' > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2 << "\n" << slurp(out);
  const std::string v = slurp(out);
  EXPECT_NE(v.find("ladder-checkpoint"), std::string::npos) << v;
  EXPECT_NE(v.find("lr = 1e-4"), std::string::npos) << v;
}

// h5py (where installed; LADDER_PYTHON picks the interpreter) sees the same schema: dotted names as datasets,
// typed attributes, f32/f64/i64/u8 datasets.
TEST(Checkpoint, H5pyReadsTheSchema) {
  const char* py_env = std::getenv("LADDER_PYTHON");
  const std::string py = py_env && *py_env ? py_env : "python3";
  if (std::system((py + " -c 'import h5py' > /dev/null 2>&1").c_str()) != 0) {
    LADDER_SKIP_OR_FAIL() << "h5py not importable by " << py << "; skipping the external check";
  }
  const std::string dir = temp_dir("ckpt_h5py");
  const std::string path = dir + "/c.h5", script = dir + "/check.py", out = dir + "/out.txt";
  core::write_checkpoint(path, sample_checkpoint(9));
  std::ofstream(script) << "import sys, h5py\n"
                           "f = h5py.File(sys.argv[1], 'r')\n"
                           "a = f.attrs\n"
                           "assert a['format'] == 'ladder-checkpoint', repr(a['format'])  # str, not bytes\n"
                           "assert a['method'] == 'lora+bitfit' and a['note'] == 'unicode ok: h\u00e9llo', repr(a['note'])\n"
                           "assert int(a['version']) == 1 and int(a['step']) == 9 and int(a['dp']) == 2\n"
                           "p = f['params/encoder.layer.0.attention.self.query.lora_A']\n"
                           "assert p.shape == (4, 16) and p.dtype == 'float32'\n"
                           "assert list(f['params'])[0] == 'encoder.layer.0.attention.self.query.lora_A'\n"
                           "assert f['optimizer/classifier.weight/exp_avg_sq'].shape == (2, 3, 5)\n"
                           "assert list(f['metrics/loss'][...]) == [2.3, 1.7, 0.9, 0.81]\n"
                           "assert f['sampler/epoch_permutation'].dtype == 'int64'\n"
                           "assert list(f['recipe/rows_read'][...]) == [7, -2**63]\n"
                           "assert bytes(f['rng/torch_cpu'][...]) == bytes([0, 1, 2, 255, 128, 7])\n"
                           "print('ok')\n";
  const std::string cmd = py + " '" + script + "' '" + path + "' > '" + out + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(out);
}

}  // namespace
