#include "data/tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <stdexcept>
#include <variant>

#include "data/tokenizer/unicode_text.h"

namespace ladder::data {
namespace {

constexpr char kSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's visible space
constexpr int32_t kControl = 3, kUserDefined = 4;  // tokenizer.ggml.token_type values (llama.cpp's enum)

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Python's str.isspace(), which transformers' respelling test (`not t.strip()`) relies on.
bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// transformers' gemma_tokenizer(): a token made only of whitespace that contains a space (Gemma stores
// runs of spaces literally) becomes that many U+2581, the spelling its normalised text uses.
std::string respell(const std::string& t) {
  if (t.find(' ') == std::string::npos) return t;
  const std::u32string cps = utf8_decode_lossy(t);
  if (!std::all_of(cps.begin(), cps.end(), python_space)) return t;
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) out += kSpace;
  return out;
}

// Byte offsets of each UTF-8 character start in s, plus s.size().
std::vector<size_t> char_starts(std::string_view s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) at.push_back(i);
  at.push_back(s.size());
  return at;
}

bool valid_utf8(const std::string& s) { return utf8_encode(utf8_decode_lossy(s)) == s; }

// "<0x41>" -> 0x41; -1 for any other token (tokenizers' ByteFallback decoder test).
int byte_token_value(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

int32_t optional_id(const ladder::core::GgufFile& f, const std::string& key, size_t vocab) {
  if (!f.has(key)) return -1;
  const int64_t id = f.get_int(key);
  if (id < 0 || uint64_t(id) >= vocab)
    throw std::runtime_error(f.path() + ": metadata key '" + key + "' = " + std::to_string(id) +
                             " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
  return static_cast<int32_t>(id);
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::from_gguf(const ladder::core::GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "llama")
    throw std::runtime_error(f.path() + ": metadata key 'tokenizer.ggml.model' is '" + model +
                             "', not the SentencePiece vocabulary ('llama') this tokenizer reads");
  // Llama-2-style SentencePiece files merge by score and add a dummy prefix: other rules, not these.
  const std::string arch = f.get_string("general.architecture");
  if (arch != "gemma" && arch != "gemma2" && arch != "gemma3")
    throw std::runtime_error(f.path() + ": metadata key 'general.architecture' is '" + arch +
                             "'; the SentencePiece tokenizer implements Gemma's rules (gemma, gemma2, gemma3) only");
  const std::vector<std::string>& tokens = f.get_strings("tokenizer.ggml.tokens");
  const auto tt = f.metadata().find("tokenizer.ggml.token_type");
  if (tt == f.metadata().end())
    throw std::runtime_error(f.path() + ": metadata key 'tokenizer.ggml.token_type' is missing");
  const auto* types = std::get_if<std::vector<int64_t>>(&tt->second.value);
  if (!types || types->size() != tokens.size())
    throw std::runtime_error(f.path() + ": metadata key 'tokenizer.ggml.token_type' is not an integer array of " +
                             std::to_string(tokens.size()) + " entries (one per token)");
  if (tokens.empty()) throw std::runtime_error(f.path() + ": metadata key 'tokenizer.ggml.tokens' is empty");

  SentencePieceTokenizer t;
  t.pieces_.reserve(tokens.size());
  for (const std::string& s : tokens) t.pieces_.push_back(respell(s));
  // pieces_ is final: views into it stay valid, through moves too. A repeated text keeps its last id, as
  // a Python dict built from the list does.
  t.piece_id_.reserve(tokens.size());
  for (size_t i = 0; i < t.pieces_.size(); ++i) t.piece_id_[t.pieces_[i]] = static_cast<int32_t>(i);

  // transformers' generate_merges with scores -position: every split of a token at a character boundary
  // into two vocabulary tokens, sorted by (score, left length, right length) descending. The rank below
  // orders the same way: by the token's id, then longer left part (in characters) first.
  for (size_t i = 0; i < t.pieces_.size(); ++i) {
    const std::string_view s = t.pieces_[i];
    if (t.piece_id_.at(s) != int32_t(i)) continue;  // a repeat: its last copy stands for it
    const std::vector<size_t> at = char_starts(s);
    const size_t nchars = at.size() - 1;
    for (size_t k = 1; k < nchars; ++k) {
      const auto l = t.piece_id_.find(s.substr(0, at[k])), r = t.piece_id_.find(s.substr(at[k]));
      if (l == t.piece_id_.end() || r == t.piece_id_.end()) continue;
      const uint64_t rank = (uint64_t(i) << 32) | (0xFFFFFFFFu - k);
      t.merges_.emplace(pair_key(l->second, r->second), Merge{rank, int32_t(i)});
    }
  }

  // Added tokens, matched before normalisation: CONTROL ones as specials, USER_DEFINED ones whose text is
  // in the (respelled) vocabulary as plain added tokens; the space runs are therefore left to the BPE.
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t type = (*types)[i];
    if (type != kControl && type != kUserDefined) continue;
    const auto it = t.piece_id_.find(tokens[i]);
    if (it == t.piece_id_.end() || tokens[i].empty()) continue;
    t.added_.emplace(it->first, it->second);
  }
  for (const auto& [text, id] : t.added_) t.added_lengths_[static_cast<unsigned char>(text[0])].push_back(text.size());
  for (auto& lens : t.added_lengths_) {
    std::sort(lens.begin(), lens.end(), std::greater<>());
    lens.erase(std::unique(lens.begin(), lens.end()), lens.end());
  }

  for (int b = 0; b < 256; ++b) {
    static const char* hex = "0123456789ABCDEF";
    const std::string name = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
    const auto it = t.piece_id_.find(name);
    t.byte_id_[b] = it == t.piece_id_.end() ? -1 : it->second;
  }
  t.unk_id_ = optional_id(f, "tokenizer.ggml.unknown_token_id", tokens.size());
  t.bos_id_ = optional_id(f, "tokenizer.ggml.bos_token_id", tokens.size());
  t.eos_id_ = optional_id(f, "tokenizer.ggml.eos_token_id", tokens.size());
  t.pad_id_ = optional_id(f, "tokenizer.ggml.padding_token_id", tokens.size());
  // transformers and llama.cpp both add BOS to a SentencePiece vocabulary whose file does not say.
  t.add_bos_ = f.has("tokenizer.ggml.add_bos_token") ? f.get_bool("tokenizer.ggml.add_bos_token") : true;
  return t;
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  std::string normalized;
  auto flush = [&](size_t from, size_t to) {
    if (from == to) return;
    normalized.clear();
    for (size_t i = from; i < to; ++i) {
      if (text[i] == ' ') normalized += kSpace;
      else normalized += text[i];
    }
    bpe(normalized, out);
  };
  // Leftmost, then longest, added token (HF's AddedVocabulary); the text between goes to the BPE whole:
  // Gemma's pre-tokenizer splits on " ", which normalisation has already replaced, so it never splits.
  const std::string_view sv = text;
  size_t run = 0;
  for (size_t i = 0; i < sv.size();) {
    size_t len = 0;
    int32_t id = -1;
    for (size_t l : added_lengths_[static_cast<unsigned char>(sv[i])]) {
      if (i + l > sv.size()) continue;
      const auto it = added_.find(sv.substr(i, l));
      if (it != added_.end()) {
        len = l, id = it->second;
        break;
      }
    }
    if (!len) {
      ++i;
      continue;
    }
    flush(run, i);
    out.push_back(id);
    i += len;
    run = i;
  }
  flush(run, sv.size());
  return out;
}

// tokenizers' BPE::merge_word and Word::merge_all: characters (or their <0xNN> bytes) as symbols, then
// repeatedly the lowest-ranked adjacent pair, leftmost on ties, through a priority queue.
void SentencePieceTokenizer::bpe(std::string_view normalized, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> sym;
  const std::u32string cps = utf8_decode_lossy(normalized);  // invalid bytes read as U+FFFD
  std::string ch;
  bool last_unk = false;
  for (char32_t c : cps) {
    ch.clear();
    utf8_append(ch, c);
    const auto it = piece_id_.find(ch);
    int32_t ids[4];
    size_t n = 0;
    if (it != piece_id_.end()) {
      ids[n++] = it->second;
    } else {
      for (unsigned char b : ch) {
        if (byte_id_[b] < 0) {
          n = 0;
          break;
        }
        ids[n++] = byte_id_[b];
      }
      if (n == 0) {  // no byte tokens either: <unk>, consecutive ones fused (fuse_unk)
        if (unk_id_ < 0)
          throw std::runtime_error("SentencePieceTokenizer: a character is neither in the vocabulary nor byte-coded, "
                                   "and there is no <unk>");
        if (!last_unk) sym.push_back({unk_id_, 0, 0, true});
        last_unk = true;
        continue;
      }
    }
    last_unk = false;
    for (size_t k = 0; k < n; ++k) sym.push_back({ids[k], 0, 0, true});
  }
  const int ns = static_cast<int>(sym.size());
  for (int i = 0; i < ns; ++i) sym[i].prev = i - 1, sym[i].next = i + 1 < ns ? i + 1 : -1;

  struct Candidate {
    uint64_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push = [&](int pos) {
    const int nx = sym[pos].next;
    if (nx < 0) return;
    const auto it = merges_.find(pair_key(sym[pos].id, sym[nx].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int i = 0; i + 1 < ns; ++i) push(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    // Stale when the pair at pos changed since it was queued.
    const auto it = merges_.find(pair_key(s.id, sym[s.next].id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    Symbol& right = sym[s.next];
    s.id = top.new_id;
    right.alive = false;
    s.next = right.next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    if (s.prev >= 0) push(s.prev);
    push(top.pos);
  }
  for (const Symbol& s : sym)
    if (s.alive) out.push_back(s.id);
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out, bytes;
  auto flush_bytes = [&] {
    if (bytes.empty()) return;
    if (valid_utf8(bytes)) {
      out += bytes;
    } else {
      for (size_t i = 0; i < bytes.size(); ++i) out += "\xef\xbf\xbd";
    }
    bytes.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw std::out_of_range("SentencePieceTokenizer: id " + std::to_string(id) + " is outside the vocabulary of " +
                              std::to_string(vocab_size()) + " tokens");
    const std::string& p = pieces_[size_t(id)];
    const int b = byte_token_value(p);
    if (b >= 0) {
      bytes.push_back(static_cast<char>(b));
      continue;
    }
    flush_bytes();
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, 3, kSpace) == 0) {
        out += ' ';
        i += 3;
      } else {
        out += p[i++];
      }
    }
  }
  flush_bytes();
  return out;
}

int32_t SentencePieceTokenizer::token_id(const std::string& token) const {
  const auto it = piece_id_.find(token);
  return it == piece_id_.end() ? -1 : it->second;
}

}  // namespace ladder::data
