// The style graders: deterministic text -> raw score functions for length, positivity, humour, reading ease and
// questions, and their table (name, version, function). Raw scores are unstandardised; GraderSet turns them into
// z-scores. A change to a grader's definition must bump its version string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace palign::scoring {

// log(tokens + 1) over grader_tokens.
double length_score(std::string_view text);

// (exclamation marks + laughter tokens + humour words + smileys and ellipses) / sqrt(tokens + 1); 0 when empty.
// Laughter tokens: "ha", "haha", "hahaha", ... (any repetition of "ha", optionally plus "h"), "hehe", "heh", "lol",
// "lmao", "rofl". Humour words: joke(s), joked, joking, funny, funnier, funniest, laugh(s/ed/ing/ter), hilarious,
// humor, humour, humorous, pun(s), punchline, comedy, comedian, comic, giggle(d), amusing, kidding, witty, gag.
// Smileys and ellipses (counted on the raw text): ":-)", ":)", ";-)", ";)", ":-D", ":D", "...".
double humour_score(std::string_view text);

// Flesch reading ease (Flesch 1948): 206.835 − 1.015 · words / sentences − 84.6 · syllables / words, with
// count_sentences and count_syllables, clipped to [kReadingEaseMin, kReadingEaseMax]; kReadingEaseMin when empty.
inline constexpr double kReadingEaseMin = -100.0;
inline constexpr double kReadingEaseMax = 121.22;  // one one-syllable word per sentence
double reading_ease_score(std::string_view text);

// '?' characters / count_sentences(text); 0 when there are no sentences.
double question_score(std::string_view text);

struct StyleGrader {
  std::string name;
  std::string version;
  double (*score)(std::string_view text);
};

// The table of style graders, in their default order: length, positivity, humour, reading_ease, questions.
const std::vector<StyleGrader>& style_graders();
// The entry of that name; throws kInvalidArgument (listing the names) when there is none.
const StyleGrader& style_grader(std::string_view name);

}  // namespace palign::scoring
