#include "data/tokenizer/unicode_text.h"

namespace ladder::data {

std::u32string utf8_decode_lossy(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    // Lead byte: how many continuation bytes follow, and the allowed range of the first one
    // (the narrowed ranges exclude overlong forms, surrogates and code points above U+10FFFF).
    int need;
    char32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1, cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2, cp = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3, cp = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      const unsigned char c = j < n ? static_cast<unsigned char>(s[j]) : 0;
      if (j >= n || c < lo || c > hi) {
        ok = false;  // the valid prefix [i, j) is one maximal invalid subsequence
        break;
      }
      cp = (cp << 6) | (c & 0x3F);
      lo = 0x80, hi = 0xBF;
    }
    out.push_back(ok ? cp : char32_t(0xFFFD));
    i = j;
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

std::vector<TextPiece> split_on_special_tokens(std::string_view text,
                                               const std::vector<std::pair<std::string, int32_t>>& specials) {
  std::vector<TextPiece> pieces;
  bool first_byte[256] = {};
  for (const auto& [tok, id] : specials)
    if (!tok.empty()) first_byte[static_cast<unsigned char>(tok[0])] = true;
  size_t run_start = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int32_t>* best = nullptr;
    if (first_byte[static_cast<unsigned char>(text[i])]) {
      for (const auto& sp : specials)
        if (!sp.first.empty() && text.compare(i, sp.first.size(), sp.first) == 0 &&
            (!best || sp.first.size() > best->first.size()))
          best = &sp;
    }
    if (!best) {
      ++i;
      continue;
    }
    if (i > run_start) pieces.push_back({text.substr(run_start, i - run_start), -1});
    pieces.push_back({text.substr(i, best->first.size()), best->second});
    i += best->first.size();
    run_start = i;
  }
  if (run_start < text.size()) pieces.push_back({text.substr(run_start), -1});
  return pieces;
}

}  // namespace ladder::data
