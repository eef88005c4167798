// `ladder encode` end to end on the real all-MiniLM-L6-v2: HDF5 layout and row order, unit-norm sentence
// embeddings, the JSON report, parity with the sentence-transformers golden fixture, f16 output, and the
// errors for a bad --pooling and a missing model directory.
#include <gtest/gtest.h>

#include "tests/support/error_of.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/io/hdf5_file.h"
#include "core/io/safetensors.h"
#include "core/tensor/dtype.h"
#include "data/tokenizer/wordpiece_tokenizer.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

namespace core = ladder::core;
namespace fs = std::filesystem;
using ladder::apps::encode_command;
using ladder::test::minilm_dir;
using ladder::test::temp_dir;

struct Line {
  std::string a, b;
  bool pair = false;
};

// Ten rows of varied length (so the length-sorted batches reorder them), three of them pairs.
const std::vector<Line> kLines = {
    {"it 's a charming and often affecting journey .", "", false},
    {"a", "", false},
    {"A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", true},
    {"for the most part , director anne-sophie birot 's first feature is a sensitive , extraordinarily "
     "well-acted drama .",
     "", false},
    {"unflinchingly bleak and desperate", "", false},
    {"Short.", "Also short.", true},
    {"the movie is a disaster from start to finish , with wooden acting and a plot that makes no sense", "", false},
    {"héllo wörld — naïve café", "", false},
    {"An animal is biting a persons finger.", "A slow loris is biting a persons finger.", true},
    {"ok", "", false},
};

std::string write_input(const std::string& dir, const std::vector<Line>& lines) {
  const std::string path = dir + "/input.txt";
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l.a << (l.pair ? "\t" + l.b : "") << "\n";
  return path;
}

template <class T>
std::vector<T> read_all(const core::Hdf5Dataset& ds) {
  size_t n = 1;
  for (auto d : ds.dims()) n *= size_t(d);
  std::vector<T> v(n);
  ds.read_rows(0, ds.dims()[0], v.data());
  return v;
}

using ladder::test::error_of;

TEST(EncodeCommand, MiniLmMeanNormalizeWritesRowsInInputOrder) {
  const std::string model = minilm_dir();
  const std::string dir = temp_dir("encode_minilm");
  const std::string input = write_input(dir, kLines);
  const std::string output = dir + "/out.h5", report = dir + "/report.json";
  ASSERT_EQ(encode_command({"--model", model, "--input", input, "--output", output, "--pooling", "mean", "--normalize",
                            "--batch-size", "4", "--threads", "2", "--report", report}),
            0);
  ASSERT_TRUE(fs::exists(output));
  EXPECT_FALSE(fs::exists(output + ".tmp"));

  auto tok = ladder::data::WordPieceTokenizer::from_vocab_file(model + "/vocab.txt");
  std::vector<std::vector<int32_t>> expect_ids;
  size_t T = 0;
  for (const auto& l : kLines) {
    expect_ids.push_back(tok.encode(l.a, l.pair ? &l.b : nullptr, 128).input_ids);
    T = std::max(T, expect_ids.back().size());
  }
  const uint64_t N = kLines.size(), C = 384;

  auto file = core::Hdf5File::open_read(output);
  EXPECT_EQ(file.get_attr_string("format"), "ladder-encodings");
  EXPECT_EQ(file.get_attr_string("pooling"), "mean+normalize");
  EXPECT_EQ(file.get_attr_string("model_type"), "bert");
  auto ids_ds = file.open_dataset("input_ids");
  auto mask_ds = file.open_dataset("attention_mask");
  auto hid_ds = file.open_dataset("last_hidden_state");
  auto emb_ds = file.open_dataset("sentence_embedding");
  EXPECT_EQ(ids_ds.dims(), (std::vector<uint64_t>{N, T}));
  EXPECT_EQ(ids_ds.dtype(), core::DType::i32);
  EXPECT_EQ(mask_ds.dims(), (std::vector<uint64_t>{N, T}));
  EXPECT_EQ(mask_ds.dtype(), core::DType::i8);
  EXPECT_EQ(hid_ds.dims(), (std::vector<uint64_t>{N, T, C}));
  EXPECT_EQ(hid_ds.dtype(), core::DType::f32);
  EXPECT_EQ(emb_ds.dims(), (std::vector<uint64_t>{N, C}));
  EXPECT_EQ(emb_ds.dtype(), core::DType::f32);
  EXPECT_THROW(file.open_dataset("pooler_output"), std::runtime_error);

  const auto ids = read_all<int32_t>(ids_ds);
  const auto mask = read_all<int8_t>(mask_ds);
  const auto hidden = read_all<float>(hid_ds);
  const auto emb = read_all<float>(emb_ds);
  for (size_t i = 0; i < N; ++i) {
    const auto& e = expect_ids[i];
    std::vector<int32_t> row(ids.begin() + long(i * T), ids.begin() + long((i + 1) * T));
    std::vector<int32_t> want = e;
    want.resize(T, tok.pad_id());
    EXPECT_EQ(row, want) << "row " << i << " (\"" << kLines[i].a << "\") is out of order or mis-tokenized";
    for (size_t t = 0; t < T; ++t) {
      EXPECT_EQ(int(mask[i * T + t]), t < e.size() ? 1 : 0) << i << "," << t;
      // Real tokens have non-zero hidden states, padded positions are exactly 0.
      double ss = 0;
      for (size_t c = 0; c < C; ++c) ss += double(hidden[(i * T + t) * C + c]) * hidden[(i * T + t) * C + c];
      if (t < e.size()) EXPECT_GT(ss, 1e-3) << i << "," << t;
      else EXPECT_EQ(ss, 0.0) << i << "," << t;
    }
    double norm = 0;
    for (size_t c = 0; c < C; ++c) norm += double(emb[i * C + c]) * emb[i * C + c];
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5) << "row " << i;
    // The sentence embedding is the normalised mean of the row's own real-token hidden states.
    std::vector<double> mean(C, 0.0);
    for (size_t t = 0; t < e.size(); ++t)
      for (size_t c = 0; c < C; ++c) mean[c] += hidden[(i * T + t) * C + c];
    double mn = 0;
    for (double m : mean) mn += m * m;
    mn = std::sqrt(mn);
    for (size_t c = 0; c < C; ++c) ASSERT_NEAR(emb[i * C + c], mean[c] / mn, 1e-5) << "row " << i << " dim " << c;
  }
  // Different inputs give different embeddings (rows were not all written from one batch slot).
  double d01 = 0;
  for (size_t c = 0; c < C; ++c) d01 += std::fabs(emb[c] - emb[C + c]);
  EXPECT_GT(d01, 0.1);

  std::ifstream rin(report);
  ASSERT_TRUE(rin.good()) << report;
  nlohmann::json j = nlohmann::json::parse(rin);
  EXPECT_EQ(j["command"], "encode");
  EXPECT_EQ(j["metrics"]["rows"].get<int64_t>(), 10);
  EXPECT_EQ(j["metrics"]["longest"].get<int64_t>(), int64_t(T));
  int64_t tokens = 0;
  for (auto& e : expect_ids) tokens += int64_t(e.size());
  EXPECT_EQ(j["metrics"]["tokens"].get<int64_t>(), tokens);
  EXPECT_GT(j["timings"]["tokens_per_s"].get<double>(), 0.0);
  ASSERT_TRUE(j["memory"].is_array());
  EXPECT_FALSE(j["memory"].empty());
  bool frozen = false;
  for (auto& r : j["memory"]) {
    EXPECT_TRUE(r.contains("device") && r.contains("category") && r.contains("current_bytes") && r.contains("peak_bytes"));
    if (r["category"] == "frozen weights" && r["peak_bytes"].get<int64_t>() > 80'000'000) frozen = true;
  }
  EXPECT_TRUE(frozen) << "the ~90 MB of MiniLM weights should show as frozen weights";
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(j["config"]["pooling"], "mean");
  EXPECT_EQ(j["config"]["batch-size"], "4");
}

// The golden fixture (sentence-transformers' own output) keeps its texts in the metadata: encoding them
// must reproduce its input_ids, last hidden states and sentence embeddings.
TEST(EncodeCommand, MatchesSentenceTransformersGolden) {
  const std::string model = minilm_dir();
  auto golden = core::SafetensorsFile::open(ladder::test::golden_dir() + "/minilm_hidden.safetensors");
  const auto info = nlohmann::json::parse(golden->metadata().at("info"));
  const auto texts = nlohmann::json::parse(info["texts"].get<std::string>());
  ASSERT_EQ(texts.size(), 8u);
  std::vector<Line> lines;
  for (auto& t : texts) {
    Line l;
    l.a = t[0].get<std::string>();
    if (t.size() > 1) {
      l.b = t[1].get<std::string>();
      l.pair = true;
    }
    lines.push_back(l);
  }
  const std::string dir = temp_dir("encode_golden");
  const std::string output = dir + "/golden.h5";
  ASSERT_EQ(encode_command({"--model", model, "--input", write_input(dir, lines), "--output", output, "--pooling", "mean",
                            "--normalize", "--batch-size", "3", "--threads", "2"}),
            0);
  auto file = core::Hdf5File::open_read(output);
  const auto ids = read_all<int32_t>(file.open_dataset("input_ids"));
  const auto emb = read_all<float>(file.open_dataset("sentence_embedding"));
  const auto hid_ds = file.open_dataset("last_hidden_state");
  const auto hidden = read_all<float>(hid_ds);
  const auto g_ids = golden->tensor("input_ids", core::MemCategory::workspace);
  const auto g_mask = golden->tensor("attention_mask", core::MemCategory::workspace);
  const auto g_emb = golden->tensor("sentence_embedding", core::MemCategory::workspace).to_floats();
  const auto g_hid = golden->tensor("hidden_state.6", core::MemCategory::workspace).to_floats();
  const size_t N = 8, T = size_t(g_ids.dim(1)), C = 384;
  ASSERT_EQ(hid_ds.dims()[1], T);
  for (size_t i = 0; i < N * T; ++i) ASSERT_EQ(ids[i], g_ids.data<int32_t>()[i]) << "token " << i;
  for (size_t i = 0; i < N * C; ++i) ASSERT_NEAR(emb[i], g_emb[i], 1e-4) << "embedding element " << i;
  for (size_t i = 0; i < N * T; ++i) {
    if (g_mask.data<int32_t>()[i] == 0) continue;
    for (size_t c = 0; c < C; ++c) ASSERT_NEAR(hidden[i * C + c], g_hid[i * C + c], 1e-4) << "token " << i << " dim " << c;
  }
}

TEST(EncodeCommand, F16OutputAndNoPooling) {
  const std::string model = minilm_dir();
  const std::string dir = temp_dir("encode_f16");
  const std::vector<Line> lines(kLines.begin(), kLines.begin() + 4);
  const std::string input = write_input(dir, lines);
  ASSERT_EQ(encode_command({"--model", model, "--input", input, "--output", dir + "/f32.h5", "--pooling", "none"}), 0);
  ASSERT_EQ(encode_command({"--model", model, "--input", input, "--output", dir + "/f16.h5", "--pooling", "none",
                            "--dtype", "f16"}),
            0);
  auto f32 = core::Hdf5File::open_read(dir + "/f32.h5");
  auto f16 = core::Hdf5File::open_read(dir + "/f16.h5");
  EXPECT_THROW(f16.open_dataset("sentence_embedding"), std::runtime_error);  // --pooling none
  auto h32 = f32.open_dataset("last_hidden_state");
  auto h16 = f16.open_dataset("last_hidden_state");
  EXPECT_EQ(h16.dtype(), core::DType::f16);
  EXPECT_EQ(h16.dims(), h32.dims());
  // And HDF5 itself sees a 2-byte float (what h5py reads as float16).
  {
    hid_t f = H5Fopen((dir + "/f16.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "last_hidden_state", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    EXPECT_EQ(H5Tget_class(t), H5T_FLOAT);
    EXPECT_EQ(H5Tget_size(t), 2u);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
  }
  const auto a = read_all<float>(h32);
  const auto b = read_all<uint16_t>(h16);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(b[i], core::f32_to_f16(a[i])) << i;
}

TEST(EncodeCommand, BadPoolingErrorsAndWritesNothing) {
  const std::string model = minilm_dir();
  const std::string dir = temp_dir("encode_bad_pooling");
  const std::string input = write_input(dir, {kLines[0]});
  const std::string output = dir + "/out.h5";
  const std::string msg =
      error_of([&] { encode_command({"--model", model, "--input", input, "--output", output, "--pooling", "bogus"}); });
  EXPECT_NE(msg.find("--pooling"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bogus"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(output));
  EXPECT_FALSE(fs::exists(output + ".tmp"));
  const std::string dt =
      error_of([&] { encode_command({"--model", model, "--input", input, "--output", output, "--dtype", "i8"}); });
  EXPECT_NE(dt.find("--dtype"), std::string::npos) << dt;
  const std::string norm = error_of(
      [&] { encode_command({"--model", model, "--input", input, "--output", output, "--pooling", "none", "--normalize"}); });
  EXPECT_NE(norm.find("--normalize"), std::string::npos) << norm;
  EXPECT_FALSE(fs::exists(output));
}

TEST(EncodeCommand, MissingModelDirIsNamed) {
  const std::string dir = temp_dir("encode_no_model");
  const std::string input = write_input(dir, {kLines[0]});
  const std::string model = dir + "/no-such-model";
  const std::string msg = error_of([&] { encode_command({"--model", model, "--input", input, "--output", dir + "/o.h5"}); });
  EXPECT_NE(msg.find(model), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/o.h5"));
}

TEST(EncodeCommand, BadInputLineIsNamedAndLeavesNoFile) {
  const std::string model = minilm_dir();
  const std::string dir = temp_dir("encode_bad_input");
  const std::string input = dir + "/bad.txt";
  std::ofstream(input) << "one\ntwo\tthree\tfour\n";
  const std::string msg =
      error_of([&] { encode_command({"--model", model, "--input", input, "--output", dir + "/o.h5", "--pooling", "mean"}); });
  EXPECT_NE(msg.find(input + ":2:"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/o.h5"));
  EXPECT_FALSE(fs::exists(dir + "/o.h5.tmp"));
}

}  // namespace
