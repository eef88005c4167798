// Chat formats (data/tokenizer/chat_format.h) against transformers' apply_chat_template: the renderings in
// tests/golden/smollm2_tokenizer.json (scripts/make_tokenizer_golden_smollm2.py) for SmolLM2's ChatML and
// Gemma 3's template, 1 and 2 turns, with and without a system message, generation prompt on and off.
#include "data/tokenizer/chat_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/test_paths.h"

namespace ladder::data {
namespace {

nlohmann::json golden() {
  std::ifstream in(ladder::test::golden_dir() + "/smollm2_tokenizer.json");
  EXPECT_TRUE(in) << "tests/golden/smollm2_tokenizer.json";
  return nlohmann::json::parse(in);
}

std::vector<ChatMessage> messages_of(const nlohmann::json& c) {
  std::vector<ChatMessage> m;
  for (const auto& j : c["messages"]) m.push_back({j["role"], j["content"]});
  return m;
}

TEST(ChatFormat, RendersAsTransformersDoes) {
  const auto ref = golden();
  ASSERT_EQ(ref["chats"].size(), 8u);
  for (const auto& c : ref["chats"]) {
    SCOPED_TRACE(c["name"].get<std::string>() + (c["add_generation_prompt"].get<bool>() ? " +gen" : ""));
    const auto m = messages_of(c);
    const bool gen = c["add_generation_prompt"];
    EXPECT_EQ(render_chat(ChatFormat::chatml_smollm2, m, gen), c["smollm2_text"].get<std::string>());
    EXPECT_EQ(render_chat(ChatFormat::gemma3, m, gen), c["gemma3_text"].get<std::string>());
  }
}

TEST(ChatFormat, RecognisesTheTemplates) {
  const auto ref = golden();
  EXPECT_EQ(ref["smollm2_chat_template"].get<std::string>(), smollm2_chat_template());
  EXPECT_EQ(ref["gemma3_chat_template"].get<std::string>(), gemma3_chat_template());
  EXPECT_EQ(chat_format_from_template(ref["smollm2_chat_template"], "llama", "f"), ChatFormat::chatml_smollm2);
  EXPECT_EQ(chat_format_from_template(ref["gemma3_chat_template"], "gemma3", "f"), ChatFormat::gemma3);
  EXPECT_EQ(chat_format_from_template("", "gemma3", "f"), ChatFormat::gemma3);  // base Gemma 3 files have none
  try {
    chat_format_from_template("{{ messages }}", "llama", "GGUF 'm.gguf'");
    ADD_FAILURE() << "unknown template accepted";
  } catch (const std::runtime_error& e) {
    const std::string w = e.what();
    for (const char* p : {"m.gguf", "tokenizer.chat_template", "chatml_smollm2", "gemma3"})
      EXPECT_NE(w.find(p), std::string::npos) << w;
  }
  EXPECT_THROW(chat_format_from_template("", "llama", "f"), std::runtime_error);
  const char* path = std::getenv("LADDER_SMOLLM2_GGUF");
  if (path && *path) {
    EXPECT_EQ(chat_format_of(core::GgufFile::open(path)), ChatFormat::chatml_smollm2);
  }
}

TEST(ChatFormat, GemmaRolesMustAlternate) {
  EXPECT_THROW(render_chat(ChatFormat::gemma3, {{"assistant", "hi"}}, true), std::invalid_argument);
  EXPECT_THROW(render_chat(ChatFormat::gemma3, {{"user", "a"}, {"user", "b"}}, true), std::invalid_argument);
  EXPECT_THROW(render_chat(ChatFormat::gemma3, {}, true), std::invalid_argument);
  // Jinja's trim strips Python's whitespace (here U+00A0 and U+3000), not the system message.
  EXPECT_EQ(render_chat(ChatFormat::gemma3, {{"system", " S "}, {"user", "\xC2\xA0 hi \xE3\x80\x80"}}, false),
            "<bos><start_of_turn>user\n S \n\nhi<end_of_turn>\n");
  EXPECT_EQ(render_chat(ChatFormat::chatml_smollm2, {}, true), "<|im_start|>assistant\n");
}

}  // namespace
}  // namespace ladder::data
