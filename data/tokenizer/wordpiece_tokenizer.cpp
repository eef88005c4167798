#include "data/tokenizer/wordpiece_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <stdexcept>

#include "data/tokenizer/unicode_text.h"

namespace ladder::data {
namespace {

constexpr size_t kMaxCharsPerWord = 100;  // HF's max_input_chars_per_word: longer words become [UNK]

uint32_t gc_mask(char32_t c) { return U_GET_GC_MASK(static_cast<UChar32>(c)); }

// HF counts \t \n \r as whitespace, not control; everything else by Unicode property.
bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= '\t' && c <= '\r');
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

// HF takes the categories P*, C* and Mn from the `unicode_categories` crate, whose tables are Unicode
// 8.0: characters assigned later are neither punctuation, control nor marks there, and a handful of
// older ones have changed category since. ICU's current tables plus the age of each character (and the
// exceptions below, found by comparing every code point with HF) reproduce HF's sets exactly.
bool assigned_by_unicode_8(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] <= 8;
}

// Cc, Cf, Co (Cs is unreachable from decoded UTF-8). Unassigned code points (Cn) are kept, as HF does.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  return (gc_mask(c) & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK)) && assigned_by_unicode_8(c);
}

// BERT's punctuation: all non-alphanumeric printable ASCII (so $ + < = > ^ ` | ~ count) plus Unicode P*.
bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  if (c == 0x166D || c == 0x111C9) return true;  // Po in Unicode 8, So and Mn now
  return (gc_mask(c) & U_GC_P_MASK) && assigned_by_unicode_8(c);
}

bool is_nonspacing_mark(UChar32 c) {
  if (c == 0x1734) return true;  // Mn in Unicode 8, Mc now
  if (c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9) return false;  // Mn only since Unicode 9+
  return u_charType(c) == U_NON_SPACING_MARK && assigned_by_unicode_8(static_cast<char32_t>(c));
}

// The CJK ideograph blocks of BERT's _is_chinese_char (not Hangul, Hiragana or Katakana).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// NFD, then drop nonspacing marks: "café" -> "cafe", "Å" -> "A".
std::u32string strip_accents(const std::u32string& s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU NFD normalizer unavailable: ") + u_errorName(status));
  icu::UnicodeString u = icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(s.data()),
                                                       static_cast<int32_t>(s.size()));
  icu::UnicodeString d = nfd->normalize(u, status);
  if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU NFD failed: ") + u_errorName(status));
  std::u32string out;
  out.reserve(s.size());
  for (int32_t i = 0; i < d.length();) {
    const UChar32 c = d.char32At(i);
    i += U16_LENGTH(c);
    if (!is_nonspacing_mark(c)) out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& vocab_txt, bool lower_case) {
  std::ifstream in(vocab_txt);
  if (!in) throw std::runtime_error("WordPiece vocab: cannot open '" + vocab_txt + "'");
  WordPieceTokenizer t;
  t.lower_case_ = lower_case;
  std::string line;
  for (int32_t id = 0; std::getline(in, line); ++id) {
    // HF trims trailing whitespace (and with it a Windows '\r') from each line.
    line.erase(std::find_if(line.rbegin(), line.rend(), [](unsigned char c) { return !std::isspace(c); }).base(),
               line.end());
    if (!t.vocab_.emplace(line, id).second)
      throw std::runtime_error("WordPiece vocab '" + vocab_txt + "' line " + std::to_string(id + 1) +
                               ": duplicate token '" + line + "' (first at line " +
                               std::to_string(t.vocab_.at(line) + 1) + ")");
    t.id_to_token_.push_back(line);
  }
  if (in.bad() || t.id_to_token_.empty()) throw std::runtime_error("WordPiece vocab: cannot read '" + vocab_txt + "'");
  auto require = [&](const char* tok) {
    auto it = t.vocab_.find(tok);
    if (it == t.vocab_.end())
      throw std::runtime_error("WordPiece vocab '" + vocab_txt + "' lacks the special token " + tok);
    return it->second;
  };
  t.cls_id_ = require("[CLS]");
  t.sep_id_ = require("[SEP]");
  t.pad_id_ = require("[PAD]");
  t.unk_id_ = require("[UNK]");
  for (const char* tok : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
    if (auto it = t.vocab_.find(tok); it != t.vocab_.end()) t.specials_.emplace_back(tok, it->second);
  return t;
}

// BertNormalizer then BertPreTokenizer: `chars` is consumed, `words` receives the pre-tokens.
void WordPieceTokenizer::normalize_and_split(std::u32string& chars, std::vector<std::u32string>& words) const {
  std::u32string norm;
  norm.reserve(chars.size() + 8);
  bool ascii = true;
  for (char32_t c : chars) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) c = ' ';
    if (is_cjk(c)) {
      norm.push_back(' ');
      norm.push_back(c);
      norm.push_back(' ');
    } else {
      norm.push_back(c);
    }
    ascii = ascii && c < 0x80;
  }
  if (lower_case_) {  // HF ties accent stripping to lower-casing, and strips first
    if (!ascii) norm = strip_accents(norm);
    // Simple case mapping equals Rust's char::to_lowercase here: the one multi-char mapping (U+0130)
    // was already decomposed by NFD and lost its dot.
    for (char32_t& c : norm) c = c < 0x80 ? char32_t(c >= 'A' && c <= 'Z' ? c + 32 : c) : char32_t(u_tolower(c));
  }
  std::u32string word;
  for (char32_t c : norm) {
    if (is_whitespace(c) || is_punctuation(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      if (!is_whitespace(c)) words.emplace_back(1, c);
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
}

// Greedy longest-match-first; a word with any piece missing from the vocab becomes one [UNK].
void WordPieceTokenizer::wordpiece(const std::u32string& word, std::vector<int32_t>& out, std::string& buf) const {
  if (word.size() > kMaxCharsPerWord) {
    out.push_back(unk_id_);
    return;
  }
  std::string utf8;
  std::vector<size_t> bounds{0};  // byte offset of each code point boundary
  for (char32_t c : word) {
    utf8_append(utf8, c);
    bounds.push_back(utf8.size());
  }
  const size_t n_before = out.size();
  const size_t n = word.size();
  for (size_t start = 0; start < n;) {
    size_t end = n;
    int32_t found = -1;
    for (; end > start; --end) {
      buf.assign(start > 0 ? "##" : "");
      buf.append(utf8, bounds[start], bounds[end] - bounds[start]);
      if (auto it = vocab_.find(buf); it != vocab_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      out.resize(n_before);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::tokenize_into(const std::string& text, std::vector<int32_t>& out) const {
  std::vector<std::u32string> words;
  std::string buf;
  for (const TextPiece& piece : split_on_special_tokens(text, specials_)) {
    if (piece.special_id >= 0) {
      out.push_back(piece.special_id);
      continue;
    }
    std::u32string chars = utf8_decode_lossy(piece.text);
    words.clear();
    normalize_and_split(chars, words);
    for (const auto& w : words) wordpiece(w, out, buf);
  }
}

std::vector<int32_t> WordPieceTokenizer::ids(const std::string& text) const {
  std::vector<int32_t> out;
  tokenize_into(text, out);
  return out;
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (int32_t id : ids(text)) out.push_back(id_to_token_[id]);
  return out;
}

Encoding WordPieceTokenizer::encode(const std::string& a, const std::string* b, int max_len) const {
  const int n_special = b ? 3 : 2;
  if (max_len < n_special)
    throw std::invalid_argument("WordPieceTokenizer::encode: max_len " + std::to_string(max_len) +
                                " cannot hold the " + std::to_string(n_special) + " special tokens");
  std::vector<int32_t> first = ids(a), second;
  if (b) second = ids(*b);
  // HF tokenizers' longest_first (utils/truncation.rs), in closed form: the shorter sequence keeps its
  // length if the longer one can absorb the cut, else both get half, the *second* one the odd token.
  // (The old Python tokenizer removed one token at a time and differs on ties; the fast one is the reference.)
  const size_t budget = static_cast<size_t>(max_len - n_special);
  size_t n1 = first.size(), n2 = second.size();
  if (n1 + n2 > budget) {
    if (!b) {
      n1 = budget;
    } else {
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);  // n1 is now the shorter
      n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      if (swap) std::swap(n1, n2);
    }
    first.resize(std::min(first.size(), n1));
    second.resize(std::min(second.size(), n2));
  }
  Encoding e;
  e.input_ids.reserve(first.size() + second.size() + n_special);
  e.input_ids.push_back(cls_id_);
  e.input_ids.insert(e.input_ids.end(), first.begin(), first.end());
  e.input_ids.push_back(sep_id_);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (b) {
    e.input_ids.insert(e.input_ids.end(), second.begin(), second.end());
    e.input_ids.push_back(sep_id_);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

int32_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) throw std::out_of_range("WordPiece vocab has no token '" + token + "'");
  return it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range("WordPiece id " + std::to_string(id) + " outside vocab of " + std::to_string(vocab_size()));
  return id_to_token_[id];
}

}  // namespace ladder::data
