#pragma once
// GPT-2's pre-tokenization, by hand instead of with a regex engine. It splits text exactly as
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does under Oniguruma (what HF `tokenizers` uses): alternatives tried in order, each greedy, with
// \p{L}/\p{N} the Unicode general categories L*/N* and \s the White_Space property.
// gpt2_pretokenize_individual_digits is HF's Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]
// (SmolLM2, StarCoder; llama.cpp's "smollm" pre-type): every \p{N} code point is a piece of its own and the
// stretches between them are split by the GPT-2 regex, each on its own (so "  1" is "  " then "1").
#include <string>
#include <utility>
#include <vector>

namespace ladder::data {

// Appends [begin, end) code-point ranges of `text`, in order; they tile the whole text.
void gpt2_pretokenize(const std::u32string& text, std::vector<std::pair<size_t, size_t>>& pieces);
void gpt2_pretokenize_individual_digits(const std::u32string& text, std::vector<std::pair<size_t, size_t>>& pieces);

}  // namespace ladder::data
