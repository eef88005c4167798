#include "data/tokenizer/chat_format.h"

#include <stdexcept>

#include "data/tokenizer/unicode_text.h"

namespace ladder::data {
namespace {

// SmolLM2-135M/360M/1.7B-Instruct's tokenizer.chat_template (in their GGUFs and tokenizer_config.json).
const char kSmolLM2Template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' "
    "+ message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";
const char kSmolLM2DefaultSystem[] = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

// google/gemma-3-*-it's chat_template ('\n' inside its Jinja strings is the two characters backslash, n).
const char kGemma3Template[] = R"TPL({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
)TPL";

// Python's str.isspace (what Jinja's trim strips): general category Zs or bidi class WS, B, S.
bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string python_strip(const std::string& s) {
  const std::u32string u = utf8_decode_lossy(s);
  size_t b = 0, e = u.size();
  while (b < e && python_space(u[b])) ++b;
  while (e > b && python_space(u[e - 1])) --e;
  return utf8_encode(std::u32string_view(u).substr(b, e - b));
}

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string render_chatml_smollm2(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0 && messages[0].role != "system")
      out += std::string("<|im_start|>system\n") + kSmolLM2DefaultSystem + "<|im_end|>\n";
    out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_gemma3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  if (messages.empty()) throw std::invalid_argument("Gemma 3 chat: the conversation is empty");
  std::string out = "<bos>", first_user_prefix;
  size_t first = 0;
  if (messages[0].role == "system") {
    first_user_prefix = messages[0].content + "\n\n";
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const size_t k = i - first;
    if ((messages[i].role == "user") != (k % 2 == 0))
      throw std::invalid_argument("Gemma 3 chat: message " + std::to_string(i) + " has role '" + messages[i].role +
                                  "'; conversation roles must alternate user/assistant/user/assistant/...");
    const std::string role = messages[i].role == "assistant" ? "model" : messages[i].role;
    out += "<start_of_turn>" + role + "\n" + (k == 0 ? first_user_prefix : "") + python_strip(messages[i].content) +
           "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

const std::string& smollm2_chat_template() {
  static const std::string s = kSmolLM2Template;
  return s;
}

const std::string& gemma3_chat_template() {
  static const std::string s = kGemma3Template;
  return s;
}

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::chatml_smollm2: return "chatml_smollm2";
    case ChatFormat::gemma3: return "gemma3";
  }
  return "?";
}

ChatFormat chat_format_from_template(const std::string& chat_template, const std::string& architecture,
                                     const std::string& where) {
  const std::string t = trimmed(chat_template);
  if (t == trimmed(smollm2_chat_template())) return ChatFormat::chatml_smollm2;
  if (t == trimmed(gemma3_chat_template())) return ChatFormat::gemma3;
  if (t.empty() && architecture == "gemma3") return ChatFormat::gemma3;
  const std::string supported =
      "supported: SmolLM2-Instruct's ChatML template (chatml_smollm2) and Gemma 3's (gemma3, also used for a "
      "gemma3 file without a template)";
  if (t.empty())
    throw std::runtime_error(where + ": no tokenizer.chat_template and general.architecture '" + architecture +
                             "' has no known chat format (" + supported + ")");
  throw std::runtime_error(where + ": tokenizer.chat_template is not one ladder can render (" + supported +
                           "); it begins '" + t.substr(0, 80) + "'");
}

ChatFormat chat_format_of(const core::GgufFile& f) {
  const std::string tmpl = f.has("tokenizer.chat_template") ? f.get_string("tokenizer.chat_template") : "";
  const std::string arch = f.has("general.architecture") ? f.get_string("general.architecture") : "";
  return chat_format_from_template(tmpl, arch, "GGUF '" + f.path() + "'");
}

std::string render_chat(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  switch (format) {
    case ChatFormat::chatml_smollm2: return render_chatml_smollm2(messages, add_generation_prompt);
    case ChatFormat::gemma3: return render_gemma3(messages, add_generation_prompt);
  }
  throw std::invalid_argument("render_chat: unknown format");
}

}  // namespace ladder::data
