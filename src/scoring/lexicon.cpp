// The embedded sentiment lexicon and the positivity score (see lexicon.h).
#include "palign/scoring/lexicon.h"

#include <algorithm>
#include <cmath>

#include "palign/scoring/tokenize.h"

namespace palign::scoring {

namespace {
std::vector<std::string_view> sorted_unique(std::vector<std::string_view> words) {
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}
}  // namespace

const std::vector<std::string_view>& positive_words() {
  static const std::vector<std::string_view> kWords = sorted_unique({
      "admire",    "adore",     "agree",      "amazing",  "amuse",     "appreciate", "awesome",    "beautiful",
      "beauty",    "best",      "better",     "bless",    "blessed",   "bliss",      "brave",      "bright",
      "brilliant", "calm",      "celebrate",  "charm",    "charming",  "cheer",      "cheerful",   "clever",
      "comfort",   "confident", "cool",       "courage",  "delight",   "delighted",  "delightful", "dream",
      "eager",     "easy",      "enjoy",      "enjoyed",  "excellent", "excited",    "exciting",   "fair",
      "faith",     "fantastic", "favorite",   "fine",     "fond",      "free",       "fresh",      "friend",
      "friendly",  "friends",   "fun",        "generous", "gentle",    "glad",       "glorious",   "glory",
      "good",      "gorgeous",  "grace",      "grateful", "great",     "happiness",  "happy",      "harmony",
      "heaven",    "helpful",   "honest",     "hope",     "hopeful",   "kind",       "kindness",   "laugh",
      "like",      "liked",     "love",       "loved",    "lovely",    "loves",      "loving",     "lucky",
      "marvelous", "nice",      "peace",      "peaceful", "perfect",   "pleasant",   "please",     "pleased",
      "pleasure",  "positive",  "precious",   "pretty",   "proud",     "rich",       "right",      "safe",
      "smile",     "success",   "successful", "sunshine", "super",     "sweet",      "thank",      "thanks",
      "treasure",  "true",      "trust",      "victory",  "warm",      "welcome",    "win",        "winner",
      "wisdom",    "wise",      "wonderful",  "worth",    "yes",
  });
  return kWords;
}

const std::vector<std::string_view>& negative_words() {
  static const std::vector<std::string_view> kWords = sorted_unique({
      "abuse",     "afraid",    "agony",    "alone",   "anger",     "angry",     "annoying", "anxious", "ashamed",
      "awful",     "bad",       "bitter",   "blame",   "bored",     "boring",    "broke",    "broken",  "cold",
      "corrupt",   "cruel",     "cry",      "damn",    "danger",    "dangerous", "dead",     "death",   "defeat",
      "depressed", "despair",   "destroy",  "die",     "died",      "dirty",     "disaster", "disgust", "dislike",
      "doom",      "dull",      "dumb",     "evil",    "fail",      "failed",    "failure",  "fake",    "false",
      "fear",      "fool",      "foolish",  "fools",   "guilt",     "guilty",    "hate",     "hated",   "hates",
      "hell",      "hopeless",  "horrible", "hurt",    "ignorant",  "ill",       "jealous",  "kill",    "killed",
      "lie",       "lies",      "lonely",   "lose",    "loser",     "loss",      "lost",     "mad",     "mean",
      "mess",      "miserable", "misery",   "mistake", "nasty",     "never",     "no",       "pain",    "painful",
      "poor",      "problem",   "problems", "regret",  "sad",       "sadness",   "scared",   "shame",   "sick",
      "sorrow",    "sorry",     "stupid",   "suffer",  "suffering", "terrible",  "tired",    "trouble", "ugly",
      "unhappy",   "upset",     "war",      "waste",   "weak",      "worried",   "worry",    "worse",   "worst",
      "wrong",
  });
  return kWords;
}

bool is_positive_word(std::string_view word) {
  const auto& words = positive_words();
  return std::binary_search(words.begin(), words.end(), word);
}

bool is_negative_word(std::string_view word) {
  const auto& words = negative_words();
  return std::binary_search(words.begin(), words.end(), word);
}

double positivity_score(std::string_view text) {
  const auto tokens = grader_tokens(text);
  if (tokens.empty()) return 0.0;
  int balance = 0;
  for (const auto& token : tokens) balance += is_positive_word(token) ? 1 : is_negative_word(token) ? -1 : 0;
  return balance / std::sqrt(static_cast<double>(tokens.size()) + 1.0);
}

}  // namespace palign::scoring
