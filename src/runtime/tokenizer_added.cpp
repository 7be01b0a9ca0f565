// Added-token matching (HF tokenizers' AddedVocabulary::find_matches): leftmost-longest, non-overlapping matches,
// with the single_word, lstrip and rstrip flags applied to each match.
#include <algorithm>

#include "tokenizer_internal.h"
#include "unicode.h"

namespace palign::runtime {

namespace {

// Last character of s before pos, or 0 when pos is 0.
char32_t char_before(std::string_view s, size_t pos) {
  if (pos == 0) return 0;
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return unicode::next_code_point(s, start);
}

}  // namespace

void AddedTokenMatcher::add(std::string pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  entries_.push_back({std::move(pattern), token});
  auto& bucket = by_first_byte_[static_cast<unsigned char>(entries_.back().pattern[0])];
  bucket.push_back(static_cast<int>(entries_.size() - 1));
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](int a, int b) { return entries_[a].pattern.size() > entries_[b].pattern.size(); });
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const Entry* found = nullptr;
    for (int index : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const Entry& e = entries_[index];
      if (text.compare(pos, e.pattern.size(), e.pattern) == 0) {
        found = &e;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + found->pattern.size();
    pos = stop;
    const AddedToken& token = *found->token;
    if (token.single_word) {
      const bool start_space = start == 0 || !unicode::is_word_char(char_before(text, start));
      size_t after = stop;
      const bool stop_space = stop == text.size() || !unicode::is_word_char(unicode::next_code_point(text, after));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        size_t prev = new_start - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t probe = prev;
        if (!unicode::is_whitespace(unicode::next_code_point(text, probe))) break;
        new_start = prev;
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!unicode::is_whitespace(unicode::next_code_point(text, next))) break;
        stop = next;
      }
      pos = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, nullptr});
    out.push_back({start, stop, &token});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), nullptr});
  return out;
}

}  // namespace palign::runtime
