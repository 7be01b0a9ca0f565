// Multinomial naive Bayes: training by counting, log-space posteriors, and the JSON form (see naive_bayes.h).
#include "palign/scoring/naive_bayes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/scoring/tokenize.h"

namespace palign::scoring {

namespace {
constexpr const char* kFormat = "palign.bench.naive_bayes";
constexpr int kVersion = 1;

double logsumexp(const std::vector<double>& v, int skip) {
  double m = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < v.size(); ++i)
    if (static_cast<int>(i) != skip) m = std::max(m, v[i]);
  if (!std::isfinite(m)) return m;
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i)
    if (static_cast<int>(i) != skip) s += std::exp(v[i] - m);
  return m + std::log(s);
}
}  // namespace

std::string NaiveBayesOptions::validate() const {
  if (!(alpha > 0.0) || !std::isfinite(alpha)) return "alpha must be a positive number";
  return "";
}

NaiveBayes NaiveBayes::train(const std::vector<std::string>& texts, const std::vector<std::string>& labels,
                             const NaiveBayesOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[scoring.naive_bayes] ", problem);
  PALIGN_CHECK(texts.size() == labels.size(), ErrorCode::kInvalidArgument, "[scoring.naive_bayes] ", texts.size(),
               " texts but ", labels.size(), " labels");
  PALIGN_CHECK(!texts.empty(), ErrorCode::kInvalidArgument, "[scoring.naive_bayes] no training texts");
  std::map<std::string, ClassCounts> by_class;
  for (size_t i = 0; i < texts.size(); ++i) {
    ClassCounts& c = by_class[labels[i]];
    c.documents++;
    for (auto& token : grader_tokens(texts[i])) c.counts[std::move(token)]++;
  }
  std::vector<std::string> classes;
  std::vector<ClassCounts> counts;
  for (auto& [name, c] : by_class) {
    classes.push_back(name);
    counts.push_back(std::move(c));
  }
  return NaiveBayes(std::move(classes), std::move(counts), options.alpha);
}

NaiveBayes::NaiveBayes(std::vector<std::string> classes, std::vector<ClassCounts> counts, double alpha)
    : classes_(std::move(classes)), counts_(std::move(counts)), alpha_(alpha) {
  const int n_class = static_cast<int>(classes_.size());
  // The vocabulary in sorted order, so that row indices do not depend on hash-map iteration order.
  std::vector<std::string> words;
  for (const auto& c : counts_)
    for (const auto& [word, n] : c.counts) words.push_back(word);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  for (size_t i = 0; i < words.size(); ++i) vocabulary_.emplace(words[i], static_cast<int>(i));
  const double v = static_cast<double>(words.size());
  log_theta_.assign(words.size() * n_class, 0.0);
  int64_t n_docs = 0;
  for (const auto& c : counts_) n_docs += c.documents;
  for (int class_idx = 0; class_idx < n_class; ++class_idx) {
    const ClassCounts& c = counts_[class_idx];
    int64_t total = 0;
    for (const auto& [word, n] : c.counts) total += n;
    const double log_denominator = std::log(static_cast<double>(total) + alpha_ * v);
    const double log_unseen = std::log(alpha_) - log_denominator;
    for (size_t word_idx = 0; word_idx < words.size(); ++word_idx)
      log_theta_[word_idx * n_class + class_idx] = log_unseen;
    for (const auto& [word, n] : c.counts)
      log_theta_[vocabulary_.at(word) * n_class + class_idx] =
          std::log(static_cast<double>(n) + alpha_) - log_denominator;
    log_prior_.push_back(std::log(static_cast<double>(c.documents) / static_cast<double>(n_docs)));
  }
}

int NaiveBayes::class_index(std::string_view name) const {
  for (size_t i = 0; i < classes_.size(); ++i)
    if (classes_[i] == name) return static_cast<int>(i);
  std::string known;
  for (const auto& c : classes_) known += (known.empty() ? "" : ", ") + c;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.naive_bayes] unknown topic '", name, "'; known topics: ", known);
}

std::vector<double> NaiveBayes::log_posterior(std::string_view text, double max_evidence_tokens) const {
  const size_t n_class = classes_.size();
  std::vector<double> log_likelihood(n_class, 0.0);
  int64_t n_tokens = 0;
  for (const auto& token : grader_tokens(text)) {
    auto it = vocabulary_.find(token);
    if (it == vocabulary_.end()) continue;
    ++n_tokens;
    const double* row = &log_theta_[static_cast<size_t>(it->second) * n_class];
    for (size_t class_idx = 0; class_idx < n_class; ++class_idx) log_likelihood[class_idx] += row[class_idx];
  }
  const double scale = (max_evidence_tokens > 0.0 && static_cast<double>(n_tokens) > max_evidence_tokens)
                           ? max_evidence_tokens / static_cast<double>(n_tokens)
                           : 1.0;
  std::vector<double> lp = log_prior_;
  for (size_t class_idx = 0; class_idx < n_class; ++class_idx) lp[class_idx] += scale * log_likelihood[class_idx];
  const double z = logsumexp(lp, -1);
  for (double& x : lp) x -= z;
  return lp;
}

int NaiveBayes::predict(std::string_view text) const {
  const auto lp = log_posterior(text);
  return static_cast<int>(std::max_element(lp.begin(), lp.end()) - lp.begin());
}

double NaiveBayes::log_odds(const std::vector<double>& log_posterior, int class_index) {
  PALIGN_ASSERT(log_posterior.size() >= 2, "log_odds needs at least two classes");
  PALIGN_ASSERT(class_index >= 0 && class_index < static_cast<int>(log_posterior.size()), "class index out of range");
  return log_posterior[class_index] - logsumexp(log_posterior, class_index);
}

std::string NaiveBayes::to_json() const {
  nlohmann::json classes = nlohmann::json::array();
  for (size_t i = 0; i < classes_.size(); ++i) {
    // std::map: sorted keys, so the same model always gives the same bytes.
    std::map<std::string, int64_t> sorted(counts_[i].counts.begin(), counts_[i].counts.end());
    classes.push_back({{"name", classes_[i]}, {"documents", counts_[i].documents}, {"counts", sorted}});
  }
  return nlohmann::json{{"format", kFormat}, {"version", kVersion}, {"alpha", alpha_}, {"classes", classes}}.dump();
}

NaiveBayes NaiveBayes::from_json(std::string_view json) {
  constexpr const char* kHint = "; rebuild it with the palign bench that wrote it";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.naive_bayes] malformed JSON: ", e.what());
  }
  PALIGN_CHECK(j.is_object() && j.value("format", "") == kFormat, ErrorCode::kInvalidArgument,
               "[scoring.naive_bayes] expected format '", kFormat, "'", kHint);
  PALIGN_CHECK(j.value("version", 0) >= 1 && j.value("version", 0) <= kVersion, ErrorCode::kInvalidArgument,
               "[scoring.naive_bayes] unsupported version ", j.value("version", 0), " (this build reads 1..", kVersion,
               ")", kHint);
  try {
    const double alpha = j.at("alpha").get<double>();
    PALIGN_CHECK(alpha > 0.0, ErrorCode::kInvalidArgument, "[scoring.naive_bayes] alpha must be positive");
    std::vector<std::string> classes;
    std::vector<ClassCounts> counts;
    for (const auto& c : j.at("classes")) {
      classes.push_back(c.at("name").get<std::string>());
      ClassCounts cc;
      cc.documents = c.at("documents").get<int64_t>();
      PALIGN_CHECK(cc.documents >= 1, ErrorCode::kInvalidArgument, "[scoring.naive_bayes] class '", classes.back(),
                   "' has no documents", kHint);
      for (const auto& [word, n] : c.at("counts").items()) cc.counts.emplace(word, n.get<int64_t>());
      counts.push_back(std::move(cc));
    }
    PALIGN_CHECK(!classes.empty(), ErrorCode::kInvalidArgument, "[scoring.naive_bayes] no classes", kHint);
    return NaiveBayes(std::move(classes), std::move(counts), alpha);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.naive_bayes] malformed model: ", e.what(), kHint);
  }
}

}  // namespace palign::scoring
