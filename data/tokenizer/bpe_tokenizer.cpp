#include "data/tokenizer/bpe_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fstream>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>

#include "data/tokenizer/gpt2_pretokenizer.h"
#include "data/tokenizer/unicode_text.h"

namespace ladder::data {
namespace {

constexpr size_t kCacheCapacity = 100000;  // words; past this the cache stops growing (as HF's does)
constexpr char kEndOfText[] = "<|endoftext|>";

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// shifted to U+0100.. so that every token is a printable string.
char32_t byte_to_char(unsigned b) {
  static const auto table = [] {
    std::array<char32_t, 256> t{};
    unsigned shifted = 0;
    for (unsigned c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      t[c] = printable ? c : 256 + shifted++;
    }
    return t;
  }();
  return table[b];
}

// The inverse of byte_to_char, or -1 for a character outside the byte alphabet.
int char_to_byte(char32_t c) {
  static const auto table = [] {
    std::array<int, 324> t;
    t.fill(-1);
    for (unsigned b = 0; b < 256; ++b) t[byte_to_char(b)] = static_cast<int>(b);
    return t;
  }();
  return c < table.size() ? table[c] : -1;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(what) + ": cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(std::string(what) + ": cannot read '" + path + "'");
  return ss.str();
}

std::unordered_map<std::string, int32_t> vocab_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error("BPE vocab " + where + " is not a JSON object of token -> id");
  std::unordered_map<std::string, int32_t> vocab;
  for (const auto& [tok, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      throw std::runtime_error("BPE vocab " + where + ": token '" + tok + "' has no valid id");
    vocab.emplace(tok, id.get<int32_t>());
  }
  return vocab;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

struct ByteLevelBpeTokenizer::WordCache {
  std::shared_mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>> words;
};

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() : cache_(std::make_unique<WordCache>()) {}
ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer& ByteLevelBpeTokenizer::operator=(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(vocab_json, "BPE vocab"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("BPE vocab '" + vocab_json + "': " + e.what());
  }
  auto vocab = vocab_from_json(j, "'" + vocab_json + "'");

  std::istringstream in(read_file(merges_txt, "BPE merges"));
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<size_t> lines;  // file line of each merge, for errors
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw std::runtime_error("BPE merges '" + merges_txt + "' line " + std::to_string(line_no) +
                               ": expected two tokens separated by one space, got '" + line + "'");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    lines.push_back(line_no);
  }
  std::vector<std::pair<std::string, int32_t>> added;
  if (auto it = vocab.find(kEndOfText); it != vocab.end()) added.emplace_back(kEndOfText, it->second);
  ByteLevelBpeTokenizer t;
  t.build(std::move(vocab), merges, std::move(added),
          [&](size_t k) { return "BPE merges '" + merges_txt + "' line " + std::to_string(lines[k]); });
  return t;
}

namespace {
// The pre-tokenizers this BPE reproduces exactly: GPT-2's ByteLevel (regex on, no prefix space), and
// Digits(individual_digits) before it (SmolLM2). Anything else would tokenize silently wrong: an error
// naming the file and what it asks for.
bool is_gpt2_byte_level(const nlohmann::json& p) {
  return p.is_object() && p.value("type", std::string()) == "ByteLevel" && !p.value("add_prefix_space", false) &&
         p.value("use_regex", true);
}
}  // namespace

ByteLevelBpeTokenizer::PreTokenizer ByteLevelBpeTokenizer::pre_tokenizer_of(const nlohmann::json& j, const std::string& path) {
  if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null()) return PreTokenizer::gpt2;
  const auto& p = j["pre_tokenizer"];
  if (is_gpt2_byte_level(p)) return PreTokenizer::gpt2;
  if (p.is_object() && p.value("type", std::string()) == "Sequence" && p.contains("pretokenizers") &&
      p["pretokenizers"].is_array() && p["pretokenizers"].size() == 2) {
    const auto& d = p["pretokenizers"][0];
    if (d.is_object() && d.value("type", std::string()) == "Digits" && d.value("individual_digits", false) &&
        is_gpt2_byte_level(p["pretokenizers"][1]))
      return PreTokenizer::gpt2_individual_digits;
  }
  std::string what = p.dump();
  if (what.size() > 160) what = what.substr(0, 160) + "...";
  throw std::runtime_error("tokenizer.json '" + path + "': pre_tokenizer " + what +
                           " is not supported (GPT-2's ByteLevel, or Digits(individual_digits) then ByteLevel)");
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_tokenizer_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, "tokenizer.json"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("tokenizer.json '" + path + "': " + e.what());
  }
  const auto& model = j.contains("model") ? j["model"] : nlohmann::json();
  if (!model.is_object() || model.value("type", std::string("BPE")) != "BPE" || !model.contains("vocab") ||
      !model.contains("merges") || !model["merges"].is_array())
    throw std::runtime_error("tokenizer.json '" + path + "': no BPE model with vocab and merges");
  auto vocab = vocab_from_json(model["vocab"], "'" + path + "' model.vocab");
  std::vector<std::pair<std::string, std::string>> merges;
  const auto& jm = model["merges"];
  for (size_t k = 0; k < jm.size(); ++k) {
    const auto& m = jm[k];
    const std::string at = "tokenizer.json '" + path + "' model.merges[" + std::to_string(k) + "]";
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        throw std::runtime_error(at + ": expected \"a b\", got '" + s + "'");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw std::runtime_error(at + ": expected \"a b\" or [a, b], got " + m.dump());
    }
  }
  std::vector<std::pair<std::string, int32_t>> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"]) added.emplace_back(a.at("content").get<std::string>(), a.at("id").get<int32_t>());
  ByteLevelBpeTokenizer t;
  t.pre_ = pre_tokenizer_of(j, path);
  t.build(std::move(vocab), merges, std::move(added), [&](size_t k) {
    return "tokenizer.json '" + path + "' model.merges[" + std::to_string(k) + "]";
  });
  return t;
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_tokens(const std::vector<std::string>& tokens,
                                                         const std::vector<std::string>& merges,
                                                         const std::vector<std::string>& specials, PreTokenizer pre,
                                                         const std::string& merges_where) {
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) vocab.emplace(tokens[id], static_cast<int32_t>(id));
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) {
    const std::string& s = merges[k];
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
      throw std::runtime_error(merges_where + "[" + std::to_string(k) + "]: expected \"a b\", got '" + s + "'");
    pairs.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  std::vector<std::pair<std::string, int32_t>> added;
  for (const std::string& sp : specials) {
    auto it = vocab.find(sp);
    if (it == vocab.end()) throw std::runtime_error("BPE special token '" + sp + "' is not in the vocab");
    added.emplace_back(sp, it->second);
  }
  ByteLevelBpeTokenizer t;
  t.pre_ = pre;
  t.build(std::move(vocab), pairs, std::move(added),
          [&](size_t k) { return merges_where + "[" + std::to_string(k) + "]"; }, /*strict=*/false);
  return t;
}

int32_t ByteLevelBpeTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void ByteLevelBpeTokenizer::build(std::unordered_map<std::string, int32_t> vocab,
                                  const std::vector<std::pair<std::string, std::string>>& merges,
                                  std::vector<std::pair<std::string, int32_t>> added,
                                  const std::function<std::string(size_t)>& merge_where, bool strict) {
  for (const auto& [tok, id] : added) vocab.emplace(tok, id);  // added tokens may sit past the model vocab
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab) max_id = std::max(max_id, id);
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : vocab) id_to_token_[id] = tok;
  for (unsigned b = 0; b < 256; ++b) {
    std::string sym;
    utf8_append(sym, byte_to_char(b));
    auto it = vocab.find(sym);
    if (it == vocab.end() && strict)
      throw std::runtime_error("BPE vocab lacks the symbol of byte " + std::to_string(b) + " ('" + sym + "')");
    byte_id_[b] = it == vocab.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab.find(a), ib = vocab.find(b), inew = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || inew == vocab.end())
      throw std::runtime_error(merge_where(rank) + ": merge '" + a + " " + b + "' uses a token missing from the vocab");
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_.insert_or_assign(pair_key(ia->second, ib->second),
                             std::make_pair(static_cast<int32_t>(rank), inew->second));
  }
  auto eos = vocab.find(kEndOfText);
  if (eos == vocab.end() && strict) throw std::runtime_error(merge_where(0) + ": vocab lacks " + kEndOfText);
  eos_id_ = eos == vocab.end() ? -1 : eos->second;
  added_ = std::move(added);
  vocab_ = std::move(vocab);
}

// HF's Word::merge_all: a heap of candidate merges ordered by (rank, position); entries made stale by
// an earlier merge are skipped when popped. Reproducing its order (not the Python loop's) keeps the
// rare words where the two differ identical too.
void ByteLevelBpeTokenizer::bpe(const std::string& bytes, std::vector<int32_t>& out) const {
  {
    std::shared_lock lock(cache_->mutex);
    if (auto it = cache_->words.find(bytes); it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  // Bytes the vocab has no symbol for are skipped (HF's BPE with unk_token null); merges then join
  // their neighbours.
  std::vector<Symbol> sym;
  sym.reserve(bytes.size());
  for (unsigned char c : bytes)
    if (byte_id_[c] >= 0) sym.push_back({byte_id_[c], static_cast<int32_t>(sym.size()) - 1, -1, true});
  const int32_t n = static_cast<int32_t>(sym.size());
  for (int32_t i = 0; i + 1 < n; ++i) sym[i].next = i + 1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](int32_t left) {
    auto it = merges_.find(pair_key(sym[left].id, sym[sym[left].next].id));
    if (it != merges_.end()) heap.push({it->second.first, left, it->second.second});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    auto it = merges_.find(pair_key(s.id, sym[s.next].id));
    if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale entry
    Symbol& right = sym[s.next];
    right.alive = false;
    s.id = top.new_id;
    s.next = right.next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    if (s.prev >= 0) push_pair(s.prev);
    if (s.next >= 0) push_pair(top.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next) ids.push_back(sym[i].id);  // symbol 0 is never merged away
  out.insert(out.end(), ids.begin(), ids.end());
  std::unique_lock lock(cache_->mutex);
  if (cache_->words.size() < kCacheCapacity) cache_->words.emplace(bytes, std::move(ids));
}

std::vector<int32_t> ByteLevelBpeTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::string bytes;
  for (const TextPiece& piece : split_on_special_tokens(text, added_)) {
    if (piece.special_id >= 0) {
      out.push_back(piece.special_id);
      continue;
    }
    const std::u32string chars = utf8_decode_lossy(piece.text);
    ranges.clear();
    if (pre_ == PreTokenizer::gpt2_individual_digits)
      gpt2_pretokenize_individual_digits(chars, ranges);
    else
      gpt2_pretokenize(chars, ranges);
    for (const auto& [b, e] : ranges) {
      bytes.clear();
      for (size_t k = b; k < e; ++k) utf8_append(bytes, chars[k]);
      bpe(bytes, out);
    }
  }
  return out;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || id_to_token_[id].empty())
      throw std::out_of_range("BPE decode: id " + std::to_string(id) + " is not in the vocab");
    const std::string& tok = id_to_token_[id];
    // HF's ByteLevel decoder: map every character back to its byte, or keep the token's own bytes if
    // any character is outside the byte alphabet.
    const std::u32string chars = utf8_decode_lossy(tok);
    std::string mapped;
    bool all_mapped = true;
    for (char32_t c : chars) {
      const int b = char_to_byte(c);
      if (b < 0) {
        all_mapped = false;
        break;
      }
      mapped.push_back(static_cast<char>(b));
    }
    bytes += all_mapped ? mapped : tok;
  }
  return utf8_encode(utf8_decode_lossy(bytes));
}

}  // namespace ladder::data
