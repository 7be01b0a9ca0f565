// The graders' tokeniser, sentence counter and syllable heuristic (see tokenize.h).
#include "palign/scoring/tokenize.h"

namespace palign::scoring {

namespace {
bool is_letter(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
char lower(char ch) { return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch; }
bool is_vowel(char ch) { return ch == 'a' || ch == 'e' || ch == 'i' || ch == 'o' || ch == 'u' || ch == 'y'; }
// The UTF-8 encoding of U+2019 RIGHT SINGLE QUOTATION MARK.
constexpr std::string_view kRightQuote = "\xE2\x80\x99";

void flush(std::string& current, std::vector<std::string>& out) {
  const size_t first = current.find_first_not_of('\'');
  if (first != std::string::npos) {
    const size_t last = current.find_last_not_of('\'');
    out.push_back(current.substr(first, last - first + 1));
  }
  current.clear();
}
}  // namespace

std::vector<std::string> grader_tokens(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  size_t i = 0;
  while (i < text.size()) {
    const char ch = text[i];
    if (is_letter(ch)) {
      current.push_back(lower(ch));
      ++i;
    } else if (ch == '\'') {
      current.push_back('\'');
      ++i;
    } else if (text.substr(i, kRightQuote.size()) == kRightQuote) {
      current.push_back('\'');
      i += kRightQuote.size();
    } else {
      flush(current, out);
      ++i;
    }
  }
  flush(current, out);
  return out;
}

int count_sentences(std::string_view text) {
  int sentences = 0;
  bool has_word = false;
  for (char ch : text) {
    if (is_letter(ch)) {
      has_word = true;
    } else if ((ch == '.' || ch == '!' || ch == '?') && has_word) {
      ++sentences;
      has_word = false;
    }
  }
  return sentences + (has_word ? 1 : 0);
}

int count_syllables(std::string_view word) {
  int groups = 0;
  bool in_group = false;
  for (char ch : word) {
    const bool vowel = is_vowel(lower(ch));
    if (vowel && !in_group) ++groups;
    in_group = vowel;
  }
  const size_t n = word.size();
  if (groups > 1 && n >= 2 && lower(word[n - 1]) == 'e' && !is_vowel(lower(word[n - 2])) && lower(word[n - 2]) != 'l')
    --groups;
  return groups < 1 ? 1 : groups;
}

}  // namespace palign::scoring
