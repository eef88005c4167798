#pragma once
// A conversation rendered into the prompt text a chat model was tuned on, equal to transformers'
// apply_chat_template(messages, tokenize=False, add_generation_prompt=...) for the two templates ladder
// knows:
//   chatml_smollm2: SmolLM2-Instruct's ChatML, "<|im_start|>role\ncontent<|im_end|>\n" per message, and its
//                   default system message first when the first message is not a system one.
//   gemma3:         Gemma 3's "<bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n": a leading
//                   system message is folded into the first user turn ("system\n\nuser"), contents are
//                   stripped of whitespace (Jinja's trim), assistant is "model", and user/assistant must
//                   alternate (an error otherwise, as the template raises).
// The format is recognised from the GGUF's tokenizer.chat_template by its exact text (surrounding
// whitespace aside), or, for a file without one, from general.architecture "gemma3" (base Gemma 3 files
// carry no template; google/gemma-3-270m-it's is used). Anything else is an error naming the file and
// the supported formats.
#include <string>
#include <vector>

#include "core/io/gguf.h"

namespace ladder::data {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFormat { chatml_smollm2, gemma3 };

const char* chat_format_name(ChatFormat f);
// `chat_template` may be empty (no template in the file); `where` names the file in errors.
ChatFormat chat_format_from_template(const std::string& chat_template, const std::string& architecture,
                                     const std::string& where);
ChatFormat chat_format_of(const core::GgufFile& f);

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt);

// The exact template texts recognised (SmolLM2-Instruct's; google/gemma-3-270m-it's).
const std::string& smollm2_chat_template();
const std::string& gemma3_chat_template();

}  // namespace ladder::data
