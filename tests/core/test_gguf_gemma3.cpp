// GGUF reader (core/io/gguf.h) on the real Gemma 3 270M Q4_K_M file (LADDER_GEMMA3_GGUF, fetched by
// scripts/fetch_gemma3.sh): the gemma3.* hyperparameters the backbone reads, and every tensor (F32, Q5_0,
// Q8_0, Q4_K, Q6_K) dequantized equal to the `gguf` Python package's (tests/golden/gguf_gemma3.json, made
// by scripts/make_gguf_fixture.py). Skips when the variable is unset, fails under
// LADDER_REQUIRE_EXTERNAL_TOOLS=1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/io/gguf.h"
#include "tests/support/test_paths.h"

using namespace ladder::core;

namespace {

const char* gemma3_path() {
  const char* p = std::getenv("LADDER_GEMMA3_GGUF");
  return p && *p ? p : nullptr;
}

}  // namespace

// The values the pinned file (sha256 a5fd3b62...) states; the backbone builds its config from these keys.
TEST(GgufGemma3, HyperparametersTheBackboneReads) {
  const char* path = gemma3_path();
  if (!path) {
    LADDER_SKIP_OR_FAIL() << "LADDER_GEMMA3_GGUF not set (scripts/fetch_gemma3.sh fetches the file)";
  }
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_string("general.architecture"), "gemma3");
  EXPECT_EQ(g.get_int("gemma3.block_count"), 18);
  EXPECT_EQ(g.get_int("gemma3.embedding_length"), 640);
  EXPECT_EQ(g.get_int("gemma3.feed_forward_length"), 2048);
  EXPECT_EQ(g.get_int("gemma3.context_length"), 32768);
  EXPECT_EQ(g.get_int("gemma3.attention.head_count"), 4);
  EXPECT_EQ(g.get_int("gemma3.attention.head_count_kv"), 1);
  EXPECT_EQ(g.get_int("gemma3.attention.key_length"), 256);
  EXPECT_EQ(g.get_int("gemma3.attention.value_length"), 256);
  EXPECT_EQ(g.get_int("gemma3.attention.sliding_window"), 512);
  EXPECT_EQ(g.get_float("gemma3.rope.freq_base"), 1000000.0);
  EXPECT_EQ(g.get_float("gemma3.attention.layer_norm_rms_epsilon"), double(1e-6f));  // stored as f32
  // The file has no rope scaling and no local (sliding-layer) rope base and no layer pattern: llama.cpp
  // hard-codes Gemma 3's local base 10000 and every 6th layer global, so the backbone must too.
  for (const auto& [key, v] : g.metadata()) {
    if (key.rfind("gemma3.", 0) != 0) continue;
    EXPECT_EQ(key.find("rope.scaling"), std::string::npos) << key;
    EXPECT_EQ(key.find("local"), std::string::npos) << key;
  }
  size_t n = 0;
  for (const auto& [key, v] : g.metadata()) n += key.rfind("gemma3.", 0) == 0;
  EXPECT_EQ(n, 11u);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g.get_strings("tokenizer.ggml.tokens").size(), 262144u);
  EXPECT_FALSE(g.has("tokenizer.chat_template"));  // the base model's file: no chat template
  // Tensor layout of block 0 and the non-block tensors, row-major (out, in); the output head is tied to
  // token_embd (there is no output.weight).
  struct Want { const char* name; std::vector<int64_t> shape; GgmlType type; };
  const std::vector<Want> want = {
      {"token_embd.weight", {262144, 640}, GgmlType::q8_0},
      {"output_norm.weight", {640}, GgmlType::f32},
      {"blk.0.attn_norm.weight", {640}, GgmlType::f32},
      {"blk.0.attn_q.weight", {1024, 640}, GgmlType::q5_0},
      {"blk.0.attn_k.weight", {256, 640}, GgmlType::q5_0},
      {"blk.0.attn_v.weight", {256, 640}, GgmlType::q8_0},
      {"blk.0.attn_q_norm.weight", {256}, GgmlType::f32},
      {"blk.0.attn_k_norm.weight", {256}, GgmlType::f32},
      {"blk.0.attn_output.weight", {640, 1024}, GgmlType::q4_k},
      {"blk.0.post_attention_norm.weight", {640}, GgmlType::f32},
      {"blk.0.ffn_norm.weight", {640}, GgmlType::f32},
      {"blk.0.ffn_gate.weight", {2048, 640}, GgmlType::q5_0},
      {"blk.0.ffn_up.weight", {2048, 640}, GgmlType::q5_0},
      {"blk.0.ffn_down.weight", {640, 2048}, GgmlType::q6_k},
      {"blk.0.post_ffw_norm.weight", {640}, GgmlType::f32},
  };
  for (const auto& w : want) {
    SCOPED_TRACE(w.name);
    const GgufTensorInfo& t = g.tensor(w.name);
    EXPECT_EQ(t.shape, w.shape);
    EXPECT_EQ(t.type, uint32_t(w.type));
  }
  EXPECT_EQ(g.tensors().size(), 2u + 18u * 13u);
  EXPECT_THROW(g.tensor("output.weight"), std::runtime_error);
}

// Every tensor's dequantized values against the `gguf` package's (count, sum, sum of squares, first and
// last values per tensor), as for SmolLM2 in test_gguf.cpp.
TEST(GgufGemma3, EveryTensorMatchesTheGgufPackage) {
  const char* path = gemma3_path();
  if (!path) {
    LADDER_SKIP_OR_FAIL() << "LADDER_GEMMA3_GGUF not set (scripts/fetch_gemma3.sh fetches the file)";
  }
  const GgufFile g = GgufFile::open(path);
  std::ifstream in(ladder::test::golden_dir() + "/gguf_gemma3.json");
  ASSERT_TRUE(in) << "tests/golden/gguf_gemma3.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  ASSERT_EQ(g.tensors().size(), ref.size());
  for (const auto& t : g.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(ref.contains(t.name));
    const auto& r = ref[t.name];
    EXPECT_EQ(ggml_type_name(t.type), r["type"].get<std::string>());
    EXPECT_EQ(t.shape, r["shape"].get<std::vector<int64_t>>());
    const std::vector<float> v = g.dequantize(t);
    ASSERT_EQ(int64_t(v.size()), t.numel());
    double sum = 0, sq = 0;
    for (float x : v) sum += x, sq += double(x) * x;
    // Sums in double of the same f32 values differ only by summation order: relative 1e-9 of sum |x|.
    const double tol = 1e-9 * r["abs_sum"].get<double>() + 1e-12;
    EXPECT_NEAR(sum, r["sum"].get<double>(), tol);
    EXPECT_NEAR(sq, r["sum_sq"].get<double>(), 1e-9 * r["sum_sq"].get<double>() + 1e-12);
    const auto head = r["head"].get<std::vector<float>>(), tail = r["tail"].get<std::vector<float>>();
    for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(v[i], head[i]) << i;
    for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(v[v.size() - tail.size() + i], tail[i]) << i;
  }
}
