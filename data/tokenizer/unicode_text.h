#pragma once
// The text plumbing both tokenizers share: lossy UTF-8 decoding, UTF-8 encoding, and splitting a text
// around literal special tokens ("[MASK]", "<|endoftext|>") the way HF's AddedVocabulary does.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ladder::data {

// Decodes UTF-8 to code points and never throws: each maximal invalid subsequence becomes one U+FFFD,
// exactly as Rust's String::from_utf8_lossy (so invalid input behaves as if Python had been given
// the text with U+FFFD in place of the bad bytes).
std::u32string utf8_decode_lossy(std::string_view s);
void utf8_append(std::string& out, char32_t c);
std::string utf8_encode(std::u32string_view s);

// A run of ordinary text, or one matched special token (special_id >= 0, text is the token itself).
struct TextPiece {
  std::string_view text;
  int32_t special_id;
};

// Splits `text` at every occurrence of a special token, leftmost match first and the longest token
// when several start at the same byte. Matching is on the raw text, before any normalisation, as HF
// does for special tokens (so "[MASK]" is matched but "[mask]" is not).
std::vector<TextPiece> split_on_special_tokens(std::string_view text,
                                               const std::vector<std::pair<std::string, int32_t>>& specials);

}  // namespace ladder::data
