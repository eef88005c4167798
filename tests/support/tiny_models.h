#pragma once
// Small random-weight Hugging Face model directories (config.json + model.safetensors) for tests, written
// with ladder's own safetensors writer so the loader is exercised too.
#include <string>

namespace ladder::test {

// A BERT with hidden 16, 2 heads, 2 layers, FFN 32, vocab 50, 24 positions, pooler. Returns `dir`.
std::string write_tiny_bert(const std::string& dir, unsigned seed, float dropout = 0.1f);
// A GPT-2 with n_embd 16, 2 heads, 2 layers, vocab 50, 24 positions.
std::string write_tiny_gpt2(const std::string& dir, unsigned seed, float dropout = 0.1f);
// A Llama (or, with gemma, a Gemma 3: sandwich and q/k norms, a sliding-window and a global layer) with
// hidden 16, 4 query and 2 key/value heads, 2 layers, FFN 24, vocab 50, 24 positions, no dropout but
// attention's.
std::string write_tiny_llama(const std::string& dir, unsigned seed, bool gemma, float attn_dropout = 0.1f);
// A fresh empty directory under the test temp dir.
std::string temp_dir(const std::string& name);

}  // namespace ladder::test
