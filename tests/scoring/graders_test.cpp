// The bench's graders: tokeniser, naive Bayes, lexicon and style scores on hand-computed cases; determinism, sense and
// held-out topic accuracy on the installed fortunes corpus; z-score standardisation; JSON round trips; bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "palign/base/error.h"
#include "palign/scoring/fortunes.h"
#include "palign/scoring/grader_set.h"
#include "palign/scoring/lexicon.h"
#include "palign/scoring/naive_bayes.h"
#include "palign/scoring/style_graders.h"
#include "palign/scoring/tokenize.h"

using namespace palign;
using namespace palign::scoring;

namespace {

constexpr double kTol = 1e-12;  // max-abs, for closed-form double results

const char* kComputersText =
    "The program crashed because of a bug in the compiler, so I rebooted the computer, recompiled the kernel and "
    "checked the source code for memory leaks in the software.";
const char* kLovePoem =
    "My love, my darling, my heart is yours forever; I kiss you under the moon and dream of your sweet smile, "
    "and our hearts beat as one in love.";
const char* kFoodText = "Bake the bread, then serve it with cheese, butter, wine and a bowl of hot soup for dinner.";

// --- tokeniser ---

TEST(GraderTokens, LowercaseWordsWithApostrophes) {
  EXPECT_EQ(grader_tokens("Don't PANIC, it's 42!"), (std::vector<std::string>{"don't", "panic", "it's"}));
  EXPECT_EQ(grader_tokens("'quoted' rock\xE2\x80\x99n\xE2\x80\x99roll -- ''"),
            (std::vector<std::string>{"quoted", "rock'n'roll"}));
  EXPECT_EQ(grader_tokens("caf\xC3\xA9 x86_64"), (std::vector<std::string>{"caf", "x"}));
  EXPECT_TRUE(grader_tokens("").empty());
  EXPECT_TRUE(grader_tokens("123 ... !!!").empty());
}

TEST(GraderTokens, SentencesAndSyllables) {
  EXPECT_EQ(count_sentences("Hi. Hi!! ... ok"), 3);
  EXPECT_EQ(count_sentences(""), 0);
  EXPECT_EQ(count_sentences("..."), 0);
  EXPECT_EQ(count_sentences("No terminator"), 1);
  EXPECT_EQ(count_sentences("Wait... what?!"), 2) << "a run of terminators ends one sentence";
  const std::map<std::string, int> expected = {{"the", 1},      {"cake", 1},  {"table", 2}, {"reading", 2},
                                               {"rhythm", 1},   {"be", 1},    {"a", 1},     {"wonderful", 3},
                                               {"computer", 3}, {"queue", 1}, {"x", 1}};
  for (const auto& [word, n] : expected) EXPECT_EQ(count_syllables(word), n) << word;
}

// --- naive Bayes on a toy corpus worked out by hand ---
// A: "apple banana", "apple apple"; B: "banana cherry". V = {apple, banana, cherry}, alpha = 1.
// θ_A = (3+1, 1+1, 0+1) / (4 + 3) = (4/7, 2/7, 1/7); θ_B = (0+1, 1+1, 1+1) / (2 + 3) = (1/5, 2/5, 2/5).
// π = (2/3, 1/3). For "apple cherry": A ∝ 2/3 · 4/7 · 1/7 = 8/147, B ∝ 1/3 · 1/5 · 2/5 = 2/75,
// P(A|y) = 600 / (600 + 294) = 100/149 and the log-odds are log(100/49).
NaiveBayes toy_model() { return NaiveBayes::train({"apple banana", "Apple APPLE", "banana cherry"}, {"A", "A", "B"}); }

TEST(NaiveBayes, TwoTopicToyPosteriorByHand) {
  const NaiveBayes nb = toy_model();
  ASSERT_EQ(nb.classes(), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(nb.vocabulary_size(), 3);
  const auto lp = nb.log_posterior("apple cherry");
  std::printf("toy P(A | 'apple cherry') = %.12f (by hand 100/149 = %.12f)\n", std::exp(lp[0]), 100.0 / 149.0);
  EXPECT_NEAR(std::exp(lp[0]), 100.0 / 149.0, kTol);
  EXPECT_NEAR(std::exp(lp[1]), 49.0 / 149.0, kTol);
  EXPECT_NEAR(NaiveBayes::log_odds(lp, 0), std::log(100.0 / 49.0), kTol);
  EXPECT_NEAR(NaiveBayes::log_odds(lp, 1), -std::log(100.0 / 49.0), kTol);
  // Out-of-vocabulary words are ignored: the posterior is the prior.
  const auto prior = nb.log_posterior("durian 42");
  EXPECT_NEAR(std::exp(prior[0]), 2.0 / 3.0, kTol);
  // "cherry" alone: A ∝ 2/3 · 1/7 = 2/21, B ∝ 1/3 · 2/5 = 2/15 -> P(B) = 21 / 36.
  EXPECT_NEAR(std::exp(nb.log_posterior("cherry")[1]), 21.0 / 36.0, kTol);
  EXPECT_EQ(nb.predict("cherry"), 1);
  EXPECT_EQ(nb.predict("apple"), 0);
}

// Tempering: "apple apple apple apple cherry" has 5 tokens; with at most 2.5 tokens of evidence the log-likelihood is
// halved: log-odds(A) = log(2/3 ÷ 1/3) + 0.5 · (4 · log((4/7) / (1/5)) + log((1/7) / (2/5))).
TEST(NaiveBayes, TemperedLikelihoodByHand) {
  const NaiveBayes nb = toy_model();
  const std::string text = "apple apple apple apple cherry";
  const double expected = std::log(2.0) + 0.5 * (4.0 * std::log(20.0 / 7.0) + std::log(5.0 / 14.0));
  EXPECT_NEAR(NaiveBayes::log_odds(nb.log_posterior(text, 2.5), 0), expected, kTol);
  const double untempered = std::log(2.0) + 4.0 * std::log(20.0 / 7.0) + std::log(5.0 / 14.0);
  EXPECT_NEAR(NaiveBayes::log_odds(nb.log_posterior(text), 0), untempered, kTol);
  EXPECT_NEAR(NaiveBayes::log_odds(nb.log_posterior(text, 5.0), 0), untempered, kTol) << "n <= L: no tempering";
  // Out-of-vocabulary tokens do not count towards n.
  EXPECT_NEAR(NaiveBayes::log_odds(nb.log_posterior(text + " durian durian", 2.5), 0), expected, kTol);
}

TEST(NaiveBayes, LogOddsStayFiniteForConfidentPosteriors) {
  std::string long_text;
  for (int i = 0; i < 2000; ++i) long_text += "apple ";
  const NaiveBayes nb = toy_model();
  const auto lp = nb.log_posterior(long_text);
  const double odds = NaiveBayes::log_odds(lp, 0);
  std::printf("log-odds after 2000 x 'apple': %.3f\n", odds);
  EXPECT_TRUE(std::isfinite(odds));
  EXPECT_GT(odds, 1000.0);
  EXPECT_NEAR(NaiveBayes::log_odds(lp, 1), -odds, 1e-9 * odds);
}

TEST(NaiveBayes, JsonRoundTripIsExact) {
  const NaiveBayes nb = toy_model();
  const NaiveBayes back = NaiveBayes::from_json(nb.to_json());
  EXPECT_EQ(back.to_json(), nb.to_json());
  EXPECT_EQ(back.log_posterior("apple cherry"), nb.log_posterior("apple cherry"));
  EXPECT_THROW(NaiveBayes::from_json("{\"format\": \"other\"}"), Error);
  EXPECT_THROW(NaiveBayes::from_json("not json"), Error);
}

TEST(NaiveBayes, BadInputsThrow) {
  EXPECT_THROW(NaiveBayes::train({}, {}), Error);
  EXPECT_THROW(NaiveBayes::train({"a"}, {"A", "B"}), Error);
  EXPECT_THROW(NaiveBayes::train({"a"}, {"A"}, {.alpha = 0.0}), Error);
  try {
    toy_model().class_index("gardening");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("gardening"), std::string::npos);
    std::printf("unknown topic: %s\n", e.what());
  }
}

// --- lexicon and style graders, by hand ---

TEST(Lexicon, ListsAreLargeSortedAndDisjoint) {
  std::printf("lexicon: %zu positive, %zu negative words\n", positive_words().size(), negative_words().size());
  EXPECT_GE(positive_words().size(), 100u);
  EXPECT_GE(negative_words().size(), 100u);
  EXPECT_TRUE(std::is_sorted(positive_words().begin(), positive_words().end()));
  for (auto w : positive_words()) EXPECT_FALSE(is_negative_word(w)) << w;
}

TEST(Lexicon, PositivityByHand) {
  EXPECT_NEAR(positivity_score("a good and happy day"), 2.0 / std::sqrt(6.0), kTol);
  EXPECT_NEAR(positivity_score("Terrible, awful war!"), -3.0 / 2.0, kTol);
  EXPECT_NEAR(positivity_score("good bad"), 0.0, kTol);
  EXPECT_EQ(positivity_score(""), 0.0);
  EXPECT_NEAR(positivity_score("GOOD"), 1.0 / std::sqrt(2.0), kTol) << "case-insensitive";
}

TEST(StyleGraders, HandComputedScores) {
  // "The cat sat on the mat.": 6 words, 6 syllables, 1 sentence -> 206.835 − 1.015·6 − 84.6·1 = 116.145.
  EXPECT_NEAR(reading_ease_score("The cat sat on the mat."), 116.145, 1e-9);
  // 5 words (reading 2, is 1, wonderful 3, cats 1, nap 1 = 8 syllables), 2 sentences:
  // 206.835 − 1.015·2.5 − 84.6·1.6 = 68.9375.
  EXPECT_NEAR(reading_ease_score("Reading is wonderful. Cats nap."), 68.9375, 1e-9);
  EXPECT_EQ(reading_ease_score(""), kReadingEaseMin);
  EXPECT_EQ(reading_ease_score("Go."), kReadingEaseMax) << "206.835 − 1.015 − 84.6 = 121.22";
  EXPECT_NEAR(length_score("one two three"), std::log(4.0), kTol);
  EXPECT_EQ(length_score(""), 0.0);
  // 6 tokens; cues: '!' + ha + ha + joke + funny + ":-)" = 6.
  EXPECT_NEAR(humour_score("Ha ha! That joke was funny :-)"), 6.0 / std::sqrt(7.0), kTol);
  EXPECT_NEAR(humour_score("Hahaha... lol"), 3.0 / std::sqrt(3.0), kTol);
  EXPECT_EQ(humour_score("The report is due on Monday."), 0.0);
  EXPECT_NEAR(question_score("Why? Because. Who knows?"), 2.0 / 3.0, kTol);
  EXPECT_EQ(question_score("Statement."), 0.0);
  EXPECT_EQ(question_score(""), 0.0);
}

TEST(StyleGraders, TableHasNamesAndVersions) {
  ASSERT_GE(style_graders().size(), 5u);
  for (const auto& g : style_graders()) {
    EXPECT_FALSE(g.name.empty());
    EXPECT_FALSE(g.version.empty());
    EXPECT_EQ(&style_grader(g.name), &g);
  }
  EXPECT_THROW(style_grader("sarcasm"), Error);
}

// --- the real corpus ---

class CorpusGraders : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    records_ = new std::vector<FortuneRecord>(read_fortunes());
    graders_ = new GraderSet(GraderSet::build(*records_));
  }
  static void TearDownTestSuite() {
    delete graders_;
    delete records_;
  }
  static std::vector<std::string> texts_of(const std::string& split) {
    std::vector<std::string> out;
    for (const auto& r : *records_)
      if (r.split == split) out.push_back(r.text);
    return out;
  }
  static int dim(const std::string& name) {
    const auto names = graders_->names();
    return static_cast<int>(std::find(names.begin(), names.end(), name) - names.begin());
  }
  static std::vector<FortuneRecord>* records_;
  static GraderSet* graders_;
};
std::vector<FortuneRecord>* CorpusGraders::records_ = nullptr;
GraderSet* CorpusGraders::graders_ = nullptr;

TEST_F(CorpusGraders, AtLeastSixNamedVersionedDimensions) {
  const auto names = graders_->names();
  std::string joined;
  for (const auto& n : names) joined += n + " ";
  std::printf("graders (K = %d): %s\n", graders_->size(), joined.c_str());
  EXPECT_EQ(graders_->size(), 10);
  EXPECT_EQ(names.front(), "topic.computers");
  for (const auto& d : graders_->dimensions()) {
    EXPECT_FALSE(d.version.empty());
    EXPECT_GT(d.sd, 0.0);
  }
}

TEST_F(CorpusGraders, ScoresMakeSense) {
  const auto computers = graders_->z(kComputersText);
  const auto love = graders_->z(kLovePoem);
  const auto food = graders_->z(kFoodText);
  std::printf("z(topic.computers): computers text %.3f, love poem %.3f\n", computers[dim("topic.computers")],
              love[dim("topic.computers")]);
  std::printf("z(topic.love): computers text %.3f, love poem %.3f\n", computers[dim("topic.love")],
              love[dim("topic.love")]);
  EXPECT_GT(computers[dim("topic.computers")], love[dim("topic.computers")]);
  EXPECT_GT(love[dim("topic.love")], computers[dim("topic.love")]);
  EXPECT_GT(food[dim("topic.food")], computers[dim("topic.food")]);
  EXPECT_GT(food[dim("topic.food")], love[dim("topic.food")]);
  EXPECT_GT(love[dim("positivity")], computers[dim("positivity")]);
  EXPECT_GT(graders_->z("Is it? Why? Who?")[dim("questions")], graders_->z("It is. Yes.")[dim("questions")]);
  EXPECT_GT(graders_->z("Ha ha! What a joke!")[dim("humour")], graders_->z("A quiet report.")[dim("humour")]);
  EXPECT_GT(graders_->z(kLovePoem)[dim("length")], graders_->z("Short.")[dim("length")]);
  EXPECT_GT(graders_->z("The cat sat.")[dim("reading_ease")],
            graders_->z("Institutional considerations necessitate comprehensive reorganisation.")[dim("reading_ease")]);
}

TEST_F(CorpusGraders, Deterministic) {
  for (const char* text : {kComputersText, kLovePoem, kFoodText, ""}) EXPECT_EQ(graders_->z(text), graders_->z(text));
  const GraderSet again = GraderSet::build(*records_);
  EXPECT_EQ(again.to_json(), graders_->to_json()) << "building twice gives the same bytes";
}

TEST_F(CorpusGraders, HeldOutTopicAccuracyBeatsMajority) {
  const NaiveBayes& nb = graders_->topic_model();
  const std::vector<std::string> topics = {"computers", "science", "love", "food", "politics"};
  std::vector<int> idx;
  for (const auto& t : topics) idx.push_back(nb.class_index(t));
  std::map<std::string, int> count;
  int n = 0, correct_among = 0, correct_all = 0;
  for (const auto& r : *records_) {
    if (r.split != "test" || std::find(topics.begin(), topics.end(), r.topic) == topics.end()) continue;
    const auto lp = nb.log_posterior(r.text);
    int best = 0;
    for (size_t k = 1; k < idx.size(); ++k)
      if (lp[idx[k]] > lp[idx[best]]) best = static_cast<int>(k);
    correct_among += topics[best] == r.topic;
    correct_all += nb.classes()[std::max_element(lp.begin(), lp.end()) - lp.begin()] == r.topic;
    count[r.topic]++;
    ++n;
  }
  int majority = 0;
  std::string majority_topic;
  for (const auto& [t, c] : count) {
    if (c > majority) majority = c, majority_topic = t;
  }
  const double acc_among = static_cast<double>(correct_among) / n;
  const double acc_all = static_cast<double>(correct_all) / n;
  const double baseline = static_cast<double>(majority) / n;
  std::printf(
      "held-out topic accuracy on %d test fortunes of the 5 topics: %.3f among the 5 topics, %.3f among all %zu "
      "topics; majority baseline ('%s') %.3f\n",
      n, acc_among, acc_all, nb.classes().size(), majority_topic.c_str(), baseline);
  ASSERT_GT(n, 100);
  EXPECT_GT(acc_among, baseline + 0.15);
  EXPECT_GT(acc_all, 0.25);
}

TEST_F(CorpusGraders, ZScoresAreStandardOnTheReferenceSample) {
  const auto valid = texts_of("valid");
  const auto test = texts_of("test");
  const int k = graders_->size();
  for (const auto* sample : {&valid, &test}) {
    std::vector<double> sum(k, 0.0), sum_sq(k, 0.0);
    for (const auto& text : *sample) {
      const auto z = graders_->z(text);
      for (int d = 0; d < k; ++d) sum[d] += z[d], sum_sq[d] += z[d] * z[d];
    }
    const double n = static_cast<double>(sample->size());
    double max_mean = 0.0, max_sd_err = 0.0;
    for (int d = 0; d < k; ++d) {
      const double mean = sum[d] / n;
      const double sd = std::sqrt(sum_sq[d] / n - mean * mean);
      max_mean = std::max(max_mean, std::abs(mean));
      max_sd_err = std::max(max_sd_err, std::abs(sd - 1.0));
    }
    const bool reference = sample == &valid;
    std::printf("%s split (%zu texts): max |mean z| = %.2e, max |sd z − 1| = %.2e\n",
                reference ? "valid (reference)" : "test (held out)", sample->size(), max_mean, max_sd_err);
    if (reference) {  // exact up to rounding
      EXPECT_LT(max_mean, 1e-9);
      EXPECT_LT(max_sd_err, 1e-9);
    } else {  // another sample of the same corpus
      EXPECT_LT(max_mean, 0.25);
      EXPECT_LT(max_sd_err, 0.35);
    }
  }
}

TEST_F(CorpusGraders, JsonRoundTripIsExact) {
  const std::string json = graders_->to_json();
  std::printf("grader set JSON: %zu bytes\n", json.size());
  const GraderSet back = GraderSet::from_json(json);
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(back.names(), graders_->names());
  for (const char* text : {kComputersText, kLovePoem, kFoodText, "", "Why?"})
    EXPECT_EQ(back.z(text), graders_->z(text));
  int checked = 0;
  for (const auto& r : *records_) {
    if (r.split == "test" && checked++ < 200) {
      ASSERT_EQ(back.z(r.text), graders_->z(r.text));
    }
  }
}

TEST_F(CorpusGraders, BadInputsThrowOneLineErrors) {
  auto expect_error = [](auto&& fn, ErrorCode code) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  };
  const NaiveBayes& nb = graders_->topic_model();
  expect_error([&] { GraderSet(nb, GraderSetOptions{}, {}); }, ErrorCode::kInvalidArgument);
  auto with = [](std::vector<std::string> topics, std::vector<std::string> styles) {
    GraderSetOptions options;
    options.topics = std::move(topics);
    options.styles = std::move(styles);
    return options;
  };
  const std::vector<std::string> two_texts = {kLovePoem, kFoodText};
  expect_error([&] { GraderSet(nb, with({"gardening"}, {"length"}), two_texts); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet(nb, with({"love"}, {"sarcasm"}), two_texts); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet(nb, with({"love", "love"}, {}), two_texts); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet(nb, with({}, {}), two_texts); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet(nb, GraderSetOptions{}, {kLovePoem}); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet::build({}); }, ErrorCode::kInvalidArgument);
  expect_error([&] { GraderSet::from_json("{\"format\": \"palign.bench.graders\", \"version\": 99}"); },
               ErrorCode::kInvalidArgument);
  std::string json = graders_->to_json();
  // A stored style version that differs from this build's is a conflict.
  auto pos = json.find("\"kind\":\"style\",\"mean\"");
  ASSERT_NE(pos, std::string::npos);
  const auto vpos = json.find("\"version\":\"1\"", pos);
  ASSERT_NE(vpos, std::string::npos);
  json.replace(vpos, 13, "\"version\":\"0\"");
  expect_error([&] { GraderSet::from_json(json); }, ErrorCode::kConflict);
}

}  // namespace
