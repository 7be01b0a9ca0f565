// A multinomial naive Bayes text classifier over grader_tokens (Manning, Raghavan & Schütze 2008, ch. 13):
//   log P(c | y) = log π_c + Σ_w n_w(y) · log θ_cw − log Σ_c' (…),   θ_cw = (N_cw + α) / (N_c + α·|V|),
// with π_c the share of training documents in class c and |V| the training vocabulary. Words outside the vocabulary
// are ignored. Immutable after training; serialises its counts (not its logs) to JSON, so a round trip is exact.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace palign::scoring {

struct NaiveBayesOptions {
  double alpha = 1.0;  // Laplace (add-α) smoothing; > 0
  // Append new fields here.
  std::string validate() const;  // "" when valid
};

class NaiveBayes {
 public:
  // texts[i] has label labels[i]. Classes are the distinct labels, sorted. Throws kInvalidArgument on a size mismatch,
  // no texts, or invalid options.
  static NaiveBayes train(const std::vector<std::string>& texts, const std::vector<std::string>& labels,
                          const NaiveBayesOptions& options = {});

  const std::vector<std::string>& classes() const { return classes_; }
  // The index of a class; throws kInvalidArgument (listing the classes) when there is none of that name.
  int class_index(std::string_view name) const;
  int vocabulary_size() const { return static_cast<int>(vocabulary_.size()); }
  double alpha() const { return alpha_; }

  // log P(c | text) for every class, normalised (logsumexp = 0). An empty or out-of-vocabulary text gives the priors.
  // With max_evidence_tokens = L > 0, a text of n > L in-vocabulary tokens has its log-likelihood scaled by L / n
  // (a tempered or "power" likelihood), so that it counts as L tokens' worth of evidence; 0 means no tempering.
  std::vector<double> log_posterior(std::string_view text, double max_evidence_tokens = 0.0) const;
  // The class with the highest posterior (the first on ties).
  int predict(std::string_view text) const;
  // log P(c | text) − log(1 − P(c | text)) = log P(c | text) − logsumexp_{c' ≠ c} log P(c' | text), stable for
  // posteriors near 0 or 1. Needs at least two classes.
  static double log_odds(const std::vector<double>& log_posterior, int class_index);

  // {"format": "palign.bench.naive_bayes", "version": 1, "alpha", "classes": [{"name", "documents",
  //  "counts": {word: n}}]}.
  std::string to_json() const;
  // Throws kInvalidArgument on malformed JSON, another format, or a newer version.
  static NaiveBayes from_json(std::string_view json);

 private:
  struct ClassCounts {
    int64_t documents = 0;
    std::unordered_map<std::string, int64_t> counts;
  };
  NaiveBayes(std::vector<std::string> classes, std::vector<ClassCounts> counts, double alpha);

  std::vector<std::string> classes_;
  std::vector<ClassCounts> counts_;
  double alpha_ = 1.0;
  // Derived from counts_: word -> row of log_theta_ ([|V|, C] row-major), and the log priors [C].
  std::unordered_map<std::string, int> vocabulary_;
  std::vector<double> log_theta_;
  std::vector<double> log_prior_;
};

}  // namespace palign::scoring
