#include "data/tokenizer/gpt2_pretokenizer.h"

#include <unicode/uchar.h>

namespace ladder::data {
namespace {

enum class CharClass { kSpace, kLetter, kNumber, kOther };

// u_isalpha is not \p{L} (it adds Alphabetic marks and Nl), so classify by general category.
CharClass classify(char32_t c) {
  if (c < 0x80) {
    if (c == ' ' || (c >= '\t' && c <= '\r')) return CharClass::kSpace;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::kLetter;
    if (c >= '0' && c <= '9') return CharClass::kNumber;
    return CharClass::kOther;
  }
  if (u_isUWhiteSpace(static_cast<UChar32>(c))) return CharClass::kSpace;
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  return CharClass::kOther;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd, lower case only) starting at i before `end`, or 0.
size_t contraction_length(const std::u32string& t, size_t i, size_t end) {
  if (t[i] != U'\'' || i + 1 >= end) return 0;
  const char32_t a = t[i + 1];
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= end) return 0;
  const char32_t b = t[i + 2];
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// The GPT-2 regex over text[begin, n) alone, as if that stretch were the whole input.
void split_gpt2(const std::u32string& text, const std::vector<CharClass>& cls, size_t begin, size_t n,
                std::vector<std::pair<size_t, size_t>>& pieces) {
  auto run_end = [&](size_t k, CharClass c) {
    while (k < n && cls[k] == c) ++k;
    return k;
  };
  for (size_t i = begin; i < n;) {
    size_t end;
    if (size_t len = contraction_length(text, i, n)) {
      end = i + len;
    } else if (text[i] == U' ' && i + 1 < n && cls[i + 1] != CharClass::kSpace) {
      end = run_end(i + 1, cls[i + 1]);  // " ?" taken, then a run of letters, numbers or others
    } else if (cls[i] != CharClass::kSpace) {
      end = run_end(i, cls[i]);
    } else {
      // \s+(?!\S): the whole run if it ends the text; else back off one so the last space can prefix
      // the next word. A single space before a non-space falls through to plain \s+ (itself).
      const size_t ws_end = run_end(i, CharClass::kSpace);
      end = (ws_end == n || ws_end - i == 1) ? ws_end : ws_end - 1;
    }
    pieces.emplace_back(i, end);
    i = end;
  }
}

std::vector<CharClass> classify_all(const std::u32string& text) {
  std::vector<CharClass> cls(text.size());
  for (size_t k = 0; k < text.size(); ++k) cls[k] = classify(text[k]);
  return cls;
}

}  // namespace

void gpt2_pretokenize(const std::u32string& text, std::vector<std::pair<size_t, size_t>>& pieces) {
  split_gpt2(text, classify_all(text), 0, text.size(), pieces);
}

// HF's Digits tests Rust's char::is_numeric (general categories Nd, Nl, No), which is \p{N}.
void gpt2_pretokenize_individual_digits(const std::u32string& text, std::vector<std::pair<size_t, size_t>>& pieces) {
  const std::vector<CharClass> cls = classify_all(text);
  size_t stretch = 0;
  for (size_t k = 0; k < text.size(); ++k) {
    if (cls[k] != CharClass::kNumber) continue;
    split_gpt2(text, cls, stretch, k, pieces);
    pieces.emplace_back(k, k + 1);
    stretch = k + 1;
  }
  split_gpt2(text, cls, stretch, text.size(), pieces);
}

}  // namespace ladder::data
