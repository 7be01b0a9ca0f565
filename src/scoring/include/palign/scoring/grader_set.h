// The bench's hidden graders: K deterministic text -> score functions (topic affinities from a naive Bayes classifier
// plus the style graders), each standardised to a z-score with the mean and standard deviation of its raw score over
// a reference sample. Simulated users' utilities are weighted sums of these z-scores; methods never see them.
// Immutable after construction; persisted as one JSON document so that a bench run can be repeated exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "palign/scoring/fortunes.h"
#include "palign/scoring/naive_bayes.h"

namespace palign::scoring {

struct GraderSetOptions {
  // Topic graders, one per fortunes topic: raw score = log P(topic|y) − log(1 − P(topic|y)) under the classifier
  // (trained on every topic of the corpus), with the likelihood tempered to at most topic_evidence_tokens tokens
  // (NaiveBayes::log_posterior) and the result clipped to [−topic_clip, topic_clip].
  // note: untempered, the log-odds grow with a text's length (median −22 for "love" on the valid split, 56% of texts
  // below −20), so the topic graders would mostly measure length; tempered to 10 tokens, 1-2% reach the clip.
  std::vector<std::string> topics = {"computers", "science", "love", "food", "politics"};
  // Style graders by name (see style_graders.h).
  std::vector<std::string> styles = {"length", "positivity", "humour", "reading_ease", "questions"};
  double topic_clip = 20.0;
  double topic_evidence_tokens = 10.0;  // > 0
  // Add-0.1 rather than add-one: with a ~60k-word vocabulary add-one swamps the small topics (love has 138 training
  // fortunes); held-out accuracy among the five default topics is 0.555 with alpha = 1 and 0.678 with 0.1.
  NaiveBayesOptions naive_bayes = {.alpha = 0.1};
  // Append new fields here.
  std::string validate() const;  // "" when valid
};

struct GraderDimension {
  std::string name;     // "topic.computers", "length", ...
  std::string version;  // changes whenever the raw score's definition changes
  double mean = 0.0;    // of the raw score over the reference sample
  double sd = 1.0;      // population standard deviation (divide by n) over the reference sample; > 0
};

class GraderSet {
 public:
  // Trains the topic classifier on the "train" records (all their topics, so that a topic competes with every other
  // one) and standardises on the texts of the "valid" records. Throws kInvalidArgument when a chosen topic or style
  // does not exist, or a split is empty.
  static GraderSet build(const std::vector<FortuneRecord>& records, const GraderSetOptions& options = {});

  // From a trained classifier and a reference sample. Throws kInvalidArgument on an empty reference sample, an
  // unknown topic or style, or a grader that is constant on the reference sample.
  GraderSet(NaiveBayes model, const GraderSetOptions& options, const std::vector<std::string>& reference);

  int size() const { return static_cast<int>(dimensions_.size()); }
  // Topics first (options.topics order), then styles (options.styles order).
  std::vector<std::string> names() const;
  const std::vector<GraderDimension>& dimensions() const { return dimensions_; }
  const NaiveBayes& topic_model() const { return model_; }
  double topic_clip() const { return topic_clip_; }
  double topic_evidence_tokens() const { return topic_evidence_tokens_; }

  // The K raw scores of a text.
  std::vector<double> raw(std::string_view text) const;
  // The K z-scores: (raw − mean) / sd.
  std::vector<double> z(std::string_view text) const;

  // {"format": "palign.bench.graders", "version": 1, "topic_clip", "topic_evidence_tokens", "topics", "styles",
  // "reference_size",
  //  "dimensions": [{"name", "kind", "version", "mean", "sd"}], "naive_bayes": {...}}. Deterministic bytes.
  std::string to_json() const;
  // Exact inverse of to_json. Throws kInvalidArgument on malformed input, kConflict when a style grader's stored
  // version differs from this build's (the file must be rebuilt).
  static GraderSet from_json(std::string_view json);

 private:
  GraderSet(NaiveBayes model, std::vector<std::string> topics, std::vector<std::string> styles, double topic_clip,
            double topic_evidence_tokens);

  NaiveBayes model_;
  std::vector<std::string> topics_;
  std::vector<int> topic_index_;  // class index in model_ of each topic
  std::vector<std::string> styles_;
  double topic_clip_ = 20.0;
  double topic_evidence_tokens_ = 10.0;
  int64_t reference_size_ = 0;
  std::vector<GraderDimension> dimensions_;
};

}  // namespace palign::scoring
