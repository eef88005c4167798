// What a decoder's configuration may not be, and that saying so names the file and the key: GGUF files of an
// architecture ladder does not build or without a hyper-parameter, and Hugging Face configs asking for what
// the Llama-family backbone does not do (rope scaling types, soft-capping, biases, heads that do not group).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/backbones/backbone.h"
#include "core/backbones/gguf_model.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

namespace {

// A GGUF v3 file with string and uint32 metadata only and no tensors.
void write_gguf(const std::string& path, const std::vector<std::pair<std::string, std::string>>& strings,
                const std::vector<std::pair<std::string, uint32_t>>& ints) {
  std::ofstream f(path, std::ios::binary);
  auto put = [&](auto v) { f.write(reinterpret_cast<const char*>(&v), sizeof(v)); };
  auto str = [&](const std::string& s) {
    put(uint64_t(s.size()));
    f.write(s.data(), std::streamsize(s.size()));
  };
  f.write("GGUF", 4);
  put(uint32_t(3));
  put(uint64_t(0));
  put(uint64_t(strings.size() + ints.size()));
  for (auto& [k, v] : strings) {
    str(k);
    put(uint32_t(8));
    str(v);
  }
  for (auto& [k, v] : ints) {
    str(k);
    put(uint32_t(4));
    put(v);
  }
}

std::string error_of_load(const std::string& path) {
  try {
    core::load_backbone(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& path, const std::vector<std::string>& parts) {
  const std::string e = error_of_load(path);
  ASSERT_FALSE(e.empty()) << path << " loaded";
  for (const auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << "'" << p << "' not in: " << e;
}

// A tiny Llama directory whose config.json sets `key` to `value` (JSON text).
std::string llama_with(const std::string& tag, const std::string& key, const std::string& value, bool gemma = false) {
  const std::string dir = test::write_tiny_llama(test::temp_dir(tag), 3, gemma);
  std::ifstream in(dir + "/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg[key] = nlohmann::json::parse(value);
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  return dir;
}

}  // namespace

TEST(DecoderConfig, GgufArchitecturesAndMissingKeysAreNamed) {
  const std::string dir = test::temp_dir("gguf_cfg");
  write_gguf(dir + "/mamba.gguf", {{"general.architecture", "mamba"}}, {});
  EXPECT_TRUE(core::is_gguf_file(dir + "/mamba.gguf"));
  expect_error(dir + "/mamba.gguf", {"mamba.gguf", "\"mamba\"", "llama and gemma3"});
  write_gguf(dir + "/nolayers.gguf", {{"general.architecture", "llama"}}, {{"llama.embedding_length", 64}});
  expect_error(dir + "/nolayers.gguf", {"nolayers.gguf", "llama.block_count"});
  write_gguf(dir + "/yarn.gguf", {{"general.architecture", "llama"}, {"llama.rope.scaling.type", "yarn"}},
             {{"llama.block_count", 2}, {"llama.embedding_length", 64}, {"llama.feed_forward_length", 96},
              {"llama.attention.head_count", 4}});
  expect_error(dir + "/yarn.gguf", {"yarn.gguf", "rope.scaling.type", "yarn"});
}

TEST(DecoderConfig, UnsupportedHuggingFaceSettingsAreNamed) {
  expect_error(llama_with("cfg_yarn", "rope_scaling", R"({"rope_type": "yarn", "factor": 4.0})"), {"config.json", "yarn"});
  expect_error(llama_with("cfg_bias", "attention_bias", "true"), {"config.json", "attention_bias"});
  expect_error(llama_with("cfg_cap", "final_logit_softcapping", "30.0", true), {"config.json", "final_logit_softcapping"});
  expect_error(llama_with("cfg_kv", "num_key_value_heads", "3"), {"config.json", "4 attention heads", "3 key/value heads"});
  expect_error(llama_with("cfg_act", "hidden_act", "\"relu\""), {"config.json", "relu"});
}
