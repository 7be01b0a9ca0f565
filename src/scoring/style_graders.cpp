// Length, humour, reading-ease and question graders, and the style grader table (see style_graders.h).
#include "palign/scoring/style_graders.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "palign/base/error.h"
#include "palign/scoring/lexicon.h"
#include "palign/scoring/tokenize.h"

namespace palign::scoring {

namespace {
bool is_laughter(std::string_view token) {
  static constexpr std::array<std::string_view, 6> kOther = {"hehe", "heh", "lol", "lmao", "rofl", "hehehe"};
  if (std::find(kOther.begin(), kOther.end(), token) != kOther.end()) return true;
  // (ha)+ h?
  if (!token.empty() && token.back() == 'h' && token.size() % 2 == 1) token.remove_suffix(1);
  if (token.empty() || token.size() % 2 != 0) return false;
  for (size_t i = 0; i < token.size(); i += 2)
    if (token[i] != 'h' || token[i + 1] != 'a') return false;
  return true;
}

bool is_humour_word(std::string_view token) {
  static constexpr std::array<std::string_view, 29> kWords = {
      "joke",    "jokes",   "joked",     "joking",   "funny",     "funnier", "funniest", "laugh",
      "laughs",  "laughed", "laughing",  "laughter", "hilarious", "humor",   "humour",   "humorous",
      "pun",     "puns",    "punchline", "comedy",   "comedian",  "comic",   "giggle",   "giggled",
      "amusing", "kidding", "witty",     "gag",      "gags"};
  return std::find(kWords.begin(), kWords.end(), token) != kWords.end();
}

int count_occurrences(std::string_view text, std::string_view needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + needle.size())) ++n;
  return n;
}
}  // namespace

double length_score(std::string_view text) { return std::log(static_cast<double>(grader_tokens(text).size()) + 1.0); }

double humour_score(std::string_view text) {
  const auto tokens = grader_tokens(text);
  double cues = static_cast<double>(std::count(text.begin(), text.end(), '!'));
  for (const auto& token : tokens) cues += (is_laughter(token) || is_humour_word(token)) ? 1.0 : 0.0;
  // None of these contains another, so each cue is counted once.
  for (std::string_view smiley : {":-)", ":)", ";-)", ";)", ":-D", ":D", "..."})
    cues += count_occurrences(text, smiley);
  return cues / std::sqrt(static_cast<double>(tokens.size()) + 1.0);
}

double reading_ease_score(std::string_view text) {
  const auto tokens = grader_tokens(text);
  const int sentences = count_sentences(text);
  if (tokens.empty() || sentences == 0) return kReadingEaseMin;
  int syllables = 0;
  for (const auto& token : tokens) syllables += count_syllables(token);
  const double words = static_cast<double>(tokens.size());
  const double ease = 206.835 - 1.015 * words / sentences - 84.6 * syllables / words;
  return std::clamp(ease, kReadingEaseMin, kReadingEaseMax);
}

double question_score(std::string_view text) {
  const int sentences = count_sentences(text);
  if (sentences == 0) return 0.0;
  return static_cast<double>(std::count(text.begin(), text.end(), '?')) / sentences;
}

const std::vector<StyleGrader>& style_graders() {
  static const std::vector<StyleGrader> kTable = {
      {"length", "1", &length_score},      {"positivity", "1", &positivity_score},
      {"humour", "1", &humour_score},      {"reading_ease", "1", &reading_ease_score},
      {"questions", "1", &question_score},
  };
  return kTable;
}

const StyleGrader& style_grader(std::string_view name) {
  for (const auto& g : style_graders())
    if (g.name == name) return g;
  std::string known;
  for (const auto& g : style_graders()) known += (known.empty() ? "" : ", ") + g.name;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.graders] unknown style grader '", name, "'; known: ", known);
}

}  // namespace palign::scoring
