// Safetensors: round trips through write_safetensors / SafetensorsFile, every malformed-input error
// (each must name the file and, where there is one, the tensor), checkpoints (single file and sharded),
// and load_backbone's errors for a checkpoint missing a tensor and an unsupported model_type.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/backbones/backbone.h"
#include "core/io/safetensors.h"
#include "core/tensor/tensor.h"
#include "tests/support/tiny_models.h"

namespace {

using ladder::core::DType;
using ladder::core::MemCategory;
using ladder::core::SafetensorsCheckpoint;
using ladder::core::SafetensorsFile;
using ladder::core::Shape;
using ladder::core::Tensor;
namespace core = ladder::core;
namespace fs = std::filesystem;
using ladder::test::temp_dir;

// Writes a safetensors file by hand: 8-byte header length, `header`, then `data`.
void write_raw(const std::string& path, const std::string& header, const std::string& data = "") {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

// Runs f, expects a std::exception whose message contains every one of `parts`.
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

Tensor f32_tensor(const Shape& s, float base) {
  std::vector<float> v(size_t(core::shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + 0.25f * float(i) - 3.0f;
  return Tensor::from_floats(v, s, MemCategory::workspace);
}

TEST(Safetensors, RoundTripAllDtypesAndMetadata) {
  const std::string dir = temp_dir("st_roundtrip");
  const std::string path = dir + "/t.safetensors";
  Tensor a = f32_tensor({3, 5}, 1.0f);
  Tensor b = f32_tensor({7}, -2.0f).to(DType::bf16, MemCategory::workspace);  // 14 bytes: misaligns what follows
  Tensor h = f32_tensor({2, 3}, 0.5f).to(DType::f16, MemCategory::workspace);
  Tensor i = Tensor::from_ints({1, -2, 3, 2147483647, -2147483647 - 1}, {5}, MemCategory::workspace);
  Tensor q = Tensor::empty({2, 3}, DType::i8, MemCategory::workspace);
  for (int k = 0; k < 6; ++k) q.data<int8_t>()[k] = int8_t(k * 50 - 128);
  Tensor scalar = Tensor::from_floats({42.0f}, {}, MemCategory::workspace);
  core::write_safetensors(path,
                          {{"layer.a", a}, {"b16", b}, {"half", h}, {"ints", i}, {"int8", q}, {"scalar", scalar}},
                          {{"format", "pt"}, {"note", "hello \"world\""}});
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->names(), (std::vector<std::string>{"b16", "half", "int8", "ints", "layer.a", "scalar"}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("note"), "hello \"world\"");
  EXPECT_EQ(f->entry("b16").st_dtype, "BF16");
  EXPECT_EQ(f->entry("half").st_dtype, "F16");
  EXPECT_EQ(f->entry("int8").st_dtype, "I8");
  EXPECT_EQ(f->entry("ints").st_dtype, "I32");
  EXPECT_EQ(f->entry("layer.a").st_dtype, "F32");

  auto check = [&](const std::string& name, const Tensor& want) {
    Tensor got = f->tensor(name, MemCategory::frozen_weights);
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    ASSERT_EQ(got.nbytes(), want.nbytes()) << name;
    EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << name;
    EXPECT_EQ(got.category(), MemCategory::frozen_weights);
  };
  check("layer.a", a);
  check("b16", b);
  check("half", h);
  check("ints", i);
  check("int8", q);
  check("scalar", scalar);
  // f32 data must be usable through a float pointer even if it sits at an odd offset (copied then).
  Tensor la = f->tensor("layer.a", MemCategory::workspace);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(la.data<float>()) % 4, 0u);
  EXPECT_EQ(la.to_floats(), a.to_floats());
  Tensor ints = f->tensor("ints", MemCategory::workspace);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ints.data<int32_t>()) % 4, 0u);
  EXPECT_EQ(ints.data<int32_t>()[3], 2147483647);

  // The file outlives the SafetensorsFile through the tensors that borrow it.
  Tensor keep = f->tensor("half", MemCategory::workspace);
  f.reset();
  EXPECT_EQ(keep.to_floats(), h.to_floats());

  expect_error([&] { SafetensorsFile::open(path)->entry("nope"); }, {path, "'nope'"});
}

TEST(Safetensors, EmptyFileListIsValid) {
  const std::string path = temp_dir("st_empty") + "/e.safetensors";
  core::write_safetensors(path, {});
  auto f = SafetensorsFile::open(path);
  EXPECT_TRUE(f->names().empty());
}

TEST(Safetensors, MissingFileNamesPath) {
  const std::string path = temp_dir("st_missing") + "/absent.safetensors";
  expect_error([&] { SafetensorsFile::open(path); }, {path});
}

TEST(Safetensors, FileShorterThanEightBytes) {
  const std::string path = temp_dir("st_short") + "/short.safetensors";
  std::ofstream(path, std::ios::binary) << "abcde";
  expect_error([&] { SafetensorsFile::open(path); }, {path, "truncated"});
  std::ofstream(path, std::ios::binary | std::ios::trunc);  // zero bytes
  expect_error([&] { SafetensorsFile::open(path); }, {path, "truncated"});
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  const std::string path = temp_dir("st_hlen") + "/hlen.safetensors";
  {
    std::ofstream out(path, std::ios::binary);
    uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_error([&] { SafetensorsFile::open(path); }, {path, "1000"});
  // A length so large that 8 + length overflows must not wrap around.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    uint64_t n = ~uint64_t(0) - 3;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  expect_error([&] { SafetensorsFile::open(path); }, {path});
}

TEST(Safetensors, InvalidJsonHeader) {
  const std::string path = temp_dir("st_json") + "/json.safetensors";
  write_raw(path, "{\"w\": {\"dtype\": \"F32\",");
  expect_error([&] { SafetensorsFile::open(path); }, {path, "JSON"});
  write_raw(path, "[1, 2, 3]");
  expect_error([&] { SafetensorsFile::open(path); }, {path, "not a JSON object"});
}

TEST(Safetensors, EntryMissingDataOffsets) {
  const std::string path = temp_dir("st_nooff") + "/nooff.safetensors";
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'", "data_offsets"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'", "data_offsets"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'"});
}

// Header fields of the wrong JSON type must still produce an error naming the file and the tensor,
// not a bare JSON library exception.
TEST(Safetensors, WrongJsonTypesNameFileAndTensor) {
  const std::string path = temp_dir("st_types") + "/types.safetensors";
  write_raw(path, R"({"weight": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2], "data_offsets": ["0", 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'", "shape"});
  write_raw(path, R"({"weight": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'weight'", "shape"});
}

TEST(Safetensors, TruncatedFileDataPastEnd) {
  const std::string path = temp_dir("st_trunc") + "/trunc.safetensors";
  core::write_safetensors(path, {{"first", f32_tensor({4, 4}, 0.0f)}, {"second", f32_tensor({8}, 1.0f)}});
  ASSERT_NO_THROW(SafetensorsFile::open(path));
  fs::resize_file(path, fs::file_size(path) - 4);  // cut into "second" (written last)
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'second'", "truncated"});
}

TEST(Safetensors, SizeInconsistentWithShape) {
  const std::string path = temp_dir("st_size") + "/size.safetensors";
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'", "[3]", "12"});
  write_raw(path, R"({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}})", std::string(16, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'", "[2, 2]"});
}

TEST(Safetensors, UnknownDtype) {
  const std::string path = temp_dir("st_dtype") + "/dtype.safetensors";
  write_raw(path, R"({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 2]}})", std::string(2, '\0'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'", "Q7"});
}

TEST(Safetensors, I64TensorOpensButDoesNotLoad) {
  const std::string path = temp_dir("st_i64") + "/i64.safetensors";
  // f32 [2] at 0..8, I64 [3] at 8..32: the shape of a BERT checkpoint's position_ids buffer.
  std::string data(32, '\0');
  float two[2] = {1.5f, -2.5f};
  std::memcpy(data.data(), two, 8);
  write_raw(path,
            R"({"embeddings.position_ids": {"dtype": "I64", "shape": [1, 3], "data_offsets": [8, 32]},
                "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
            data);
  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(f->has("embeddings.position_ids"));
  EXPECT_FALSE(f->entry("embeddings.position_ids").loadable);
  EXPECT_EQ(f->entry("embeddings.position_ids").shape, (Shape{1, 3}));
  EXPECT_TRUE(f->entry("w").loadable);
  EXPECT_EQ(f->tensor("w", MemCategory::workspace).to_floats(), (std::vector<float>{1.5f, -2.5f}));
  expect_error([&] { f->tensor("embeddings.position_ids", MemCategory::workspace); },
               {path, "'embeddings.position_ids'", "I64"});
}

TEST(SafetensorsCheckpoint, SingleFileLoadChecksShapeAndPresence) {
  const std::string dir = temp_dir("ckpt_single");
  core::write_safetensors(dir + "/model.safetensors", {{"w", f32_tensor({2, 3}, 0.0f)}, {"b", f32_tensor({3}, 1.0f)}});
  auto ck = SafetensorsCheckpoint::open_dir(dir);
  EXPECT_EQ(ck.dir(), dir);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"b", "w"}));
  EXPECT_TRUE(ck.has("w"));
  EXPECT_FALSE(ck.has("x"));
  EXPECT_EQ(ck.load("w", {2, 3}, MemCategory::frozen_weights).to_floats(), f32_tensor({2, 3}, 0.0f).to_floats());
  EXPECT_EQ(ck.file_of("b"), dir + "/model.safetensors");
  expect_error([&] { ck.load("w", {3, 2}, MemCategory::frozen_weights); },
               {dir + "/model.safetensors", "'w'", "[2, 3]", "[3, 2]"});
  expect_error([&] { ck.load("missing.weight", {3}, MemCategory::frozen_weights); },
               {dir + "/model.safetensors", "'missing.weight'"});
}

TEST(SafetensorsCheckpoint, ShardedDirectoryLoadsFromBothShards) {
  const std::string dir = temp_dir("ckpt_sharded");
  core::write_safetensors(dir + "/model-00001-of-00002.safetensors",
                          {{"a.weight", f32_tensor({4}, 1.0f)}, {"a.bias", f32_tensor({2}, 2.0f)}});
  core::write_safetensors(dir + "/model-00002-of-00002.safetensors",
                          {{"b.weight", f32_tensor({2, 2}, 3.0f).to(DType::bf16, MemCategory::workspace)}});
  nlohmann::json idx = {{"metadata", {{"total_size", 40}}},
                        {"weight_map",
                         {{"a.weight", "model-00001-of-00002.safetensors"},
                          {"a.bias", "model-00001-of-00002.safetensors"},
                          {"b.weight", "model-00002-of-00002.safetensors"}}}};
  std::ofstream(dir + "/model.safetensors.index.json") << idx.dump(2);
  auto ck = SafetensorsCheckpoint::open_dir(dir);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a.bias", "a.weight", "b.weight"}));
  EXPECT_EQ(ck.load("a.weight", {4}, MemCategory::workspace).to_floats(), f32_tensor({4}, 1.0f).to_floats());
  EXPECT_EQ(ck.load("a.bias", {2}, MemCategory::workspace).to_floats(), f32_tensor({2}, 2.0f).to_floats());
  Tensor b = ck.load("b.weight", {2, 2}, MemCategory::workspace);
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_EQ(b.to_floats(), f32_tensor({2, 2}, 3.0f).to_floats());  // exact in bf16
  EXPECT_EQ(ck.file_of("b.weight"), dir + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(ck.file_of("a.bias"), dir + "/model-00001-of-00002.safetensors");
  expect_error([&] { ck.load("b.weight", {4}, MemCategory::workspace); },
               {dir + "/model-00002-of-00002.safetensors", "'b.weight'", "[2, 2]", "[4]"});
  expect_error([&] { ck.load("c.weight", {4}, MemCategory::workspace); }, {dir, "'c.weight'"});

  // An index naming a tensor its shard does not hold.
  idx["weight_map"]["ghost.weight"] = "model-00002-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json", std::ios::trunc) << idx.dump(2);
  expect_error([&] { SafetensorsCheckpoint::open_dir(dir); },
               {dir + "/model-00002-of-00002.safetensors", "'ghost.weight'", "model.safetensors.index.json"});

  // An index naming a shard that does not exist.
  idx["weight_map"].erase("ghost.weight");
  idx["weight_map"]["c.weight"] = "model-00003-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json", std::ios::trunc) << idx.dump(2);
  expect_error([&] { SafetensorsCheckpoint::open_dir(dir); }, {dir + "/model-00003-of-00002.safetensors"});

  // An index that is not valid JSON.
  std::ofstream(dir + "/model.safetensors.index.json", std::ios::trunc) << "{\"weight_map\": {";
  expect_error([&] { SafetensorsCheckpoint::open_dir(dir); }, {dir + "/model.safetensors.index.json", "JSON"});
}

TEST(SafetensorsCheckpoint, DirectoryWithNeitherFile) {
  const std::string dir = temp_dir("ckpt_none");
  std::ofstream(dir + "/config.json") << "{}";
  expect_error([&] { SafetensorsCheckpoint::open_dir(dir); }, {dir, "model.safetensors"});
}

TEST(LoadBackbone, TinyBertLoadsAndMissingTensorIsNamed) {
  const std::string good = ladder::test::write_tiny_bert(temp_dir("bb_good"), 3);
  auto bb = core::load_backbone(good);
  EXPECT_EQ(bb->config().model_type, "bert");
  EXPECT_EQ(bb->config().hidden, 16);

  // Same model without one tensor.
  const std::string removed = "encoder.layer.1.attention.self.key.weight";
  const std::string bad = temp_dir("bb_missing");
  fs::copy_file(good + "/config.json", bad + "/config.json");
  {
    auto f = SafetensorsFile::open(good + "/model.safetensors");
    std::vector<std::pair<std::string, Tensor>> keep;
    for (const auto& n : f->names())
      if (n != removed) keep.emplace_back(n, f->tensor(n, MemCategory::workspace));
    ASSERT_EQ(keep.size() + 1, f->names().size());
    core::write_safetensors(bad + "/model.safetensors", keep);
  }
  expect_error([&] { core::load_backbone(bad); }, {bad, "'" + removed + "'"});
  expect_error([&] { core::load_backbone(bad, nullptr, core::WeightValues::deferred); }, {bad, "'" + removed + "'"});
}

// Deferred values: the same parameters (names, counts), none held or accounted; read_stored gives the
// mapped values; the backbone refuses to run; a wrong shape is still an error naming the tensor.
TEST(LoadBackbone, DeferredWeightsAreRegisteredButNotHeld) {
  for (bool gpt : {false, true}) {
    const std::string dir = gpt ? ladder::test::write_tiny_gpt2(temp_dir("bb_defer_gpt"), 5)
                                : ladder::test::write_tiny_bert(temp_dir("bb_defer_bert"), 5);
    auto mapped = core::load_backbone(dir);
    auto& mem = core::MemoryTracker::instance();
    const size_t before = mem.current(0, MemCategory::frozen_weights);
    auto deferred = core::load_backbone(dir, nullptr, core::WeightValues::deferred);
    EXPECT_EQ(mem.current(0, MemCategory::frozen_weights), before) << "a deferred backbone holds no weights";
    EXPECT_EQ(deferred->params().count(false), mapped->params().count(false));
    ASSERT_EQ(deferred->params().all().size(), mapped->params().all().size());
    for (auto& p : deferred->params().all()) {
      EXPECT_FALSE(p->value.defined()) << p->name;
      ASSERT_TRUE(p->read_stored) << p->name;
      const Tensor t = p->read_stored();
      EXPECT_GT(mem.current(0, MemCategory::frozen_weights), before) << "a read weight is accounted while it lives";
      EXPECT_EQ(t.to_floats(), mapped->params().at(p->name).value.to_floats()) << p->name;
    }
    EXPECT_EQ(mem.current(0, MemCategory::frozen_weights), before);
    std::vector<int32_t> ids(4, 1);
    const core::TokenBatch b{1, 4, ids.data(), nullptr, nullptr};
    expect_error([&] { deferred->forward(b, core::StepOptions{}); }, {"deferred", "cannot run"});
  }
  // A config whose hidden size disagrees with the stored tensors.
  const std::string dir = ladder::test::write_tiny_bert(temp_dir("bb_defer_shape"), 6);
  nlohmann::json cfg;
  std::ifstream(dir + "/config.json") >> cfg;
  cfg["intermediate_size"] = int(cfg["intermediate_size"]) * 2;
  std::ofstream(dir + "/config.json", std::ios::trunc) << cfg.dump();
  expect_error([&] { core::load_backbone(dir, nullptr, core::WeightValues::deferred); }, {"intermediate.dense.weight", "has shape"});
}

TEST(LoadBackbone, UnsupportedModelTypeNamesItAndTheFile) {
  const std::string dir = ladder::test::write_tiny_bert(temp_dir("bb_t5"), 4);
  nlohmann::json cfg;
  std::ifstream(dir + "/config.json") >> cfg;
  cfg["model_type"] = "t5";
  std::ofstream(dir + "/config.json", std::ios::trunc) << cfg.dump();
  expect_error([&] { core::load_backbone(dir); }, {dir + "/config.json", "t5"});
}

TEST(LoadBackbone, MissingConfigNamesIt) {
  const std::string dir = temp_dir("bb_noconfig");
  expect_error([&] { core::load_backbone(dir); }, {dir + "/config.json"});
}

}  // namespace
