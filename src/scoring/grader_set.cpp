// Building, standardising and (de)serialising the bench's grader set (see grader_set.h).
#include "palign/scoring/grader_set.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/scoring/style_graders.h"

namespace palign::scoring {

namespace {
constexpr const char* kFormat = "palign.bench.graders";
constexpr int kVersion = 1;
constexpr const char* kTopicPrefix = "topic.";
// Version of the topic graders' definition (clipped naive Bayes log posterior odds).
constexpr const char* kTopicVersion = "nb-tempered-logodds-1";
constexpr const char* kHint = "; rebuild the graders with palign bench";
}  // namespace

std::string GraderSetOptions::validate() const {
  if (topics.empty() && styles.empty()) return "no graders chosen";
  if (!(topic_clip > 0.0) || !std::isfinite(topic_clip)) return "topic_clip must be a positive number";
  if (!(topic_evidence_tokens > 0.0) || !std::isfinite(topic_evidence_tokens))
    return "topic_evidence_tokens must be a positive number";
  std::vector<std::string> names = topics;
  names.insert(names.end(), styles.begin(), styles.end());
  std::sort(names.begin(), names.end());
  if (std::adjacent_find(names.begin(), names.end()) != names.end()) return "a topic or style is chosen twice";
  return naive_bayes.validate();
}

GraderSet GraderSet::build(const std::vector<FortuneRecord>& records, const GraderSetOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[scoring.graders] ", problem);
  std::vector<std::string> texts, labels, reference;
  for (const auto& r : records) {
    if (r.split == "train") {
      texts.push_back(r.text);
      labels.push_back(r.topic);
    } else if (r.split == "valid") {
      reference.push_back(r.text);
    }
  }
  PALIGN_CHECK(!texts.empty(), ErrorCode::kInvalidArgument, "[scoring.graders] no records in the train split");
  return GraderSet(NaiveBayes::train(texts, labels, options.naive_bayes), options, reference);
}

GraderSet::GraderSet(NaiveBayes model, std::vector<std::string> topics, std::vector<std::string> styles,
                     double topic_clip, double topic_evidence_tokens)
    : model_(std::move(model)),
      topics_(std::move(topics)),
      styles_(std::move(styles)),
      topic_clip_(topic_clip),
      topic_evidence_tokens_(topic_evidence_tokens) {
  PALIGN_CHECK(topics_.empty() || model_.classes().size() >= 2, ErrorCode::kInvalidArgument,
               "[scoring.graders] topic graders need a classifier with at least two topics, got ",
               model_.classes().size());
  for (const auto& topic : topics_) {
    topic_index_.push_back(model_.class_index(topic));
    dimensions_.push_back({kTopicPrefix + topic, kTopicVersion});
  }
  for (const auto& style : styles_) dimensions_.push_back({style, style_grader(style).version});
}

GraderSet::GraderSet(NaiveBayes model, const GraderSetOptions& options, const std::vector<std::string>& reference)
    : GraderSet(std::move(model), options.topics, options.styles, options.topic_clip, options.topic_evidence_tokens) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[scoring.graders] ", problem);
  PALIGN_CHECK(!reference.empty(), ErrorCode::kInvalidArgument,
               "[scoring.graders] the reference sample is empty; z-scores need at least two texts");
  const size_t k = dimensions_.size();
  std::vector<double> sum(k, 0.0), sum_sq(k, 0.0);
  std::vector<std::vector<double>> raws;
  raws.reserve(reference.size());
  for (const auto& text : reference) raws.push_back(raw(text));
  // Two passes (mean, then squared deviations) for accuracy.
  for (const auto& r : raws)
    for (size_t dim_idx = 0; dim_idx < k; ++dim_idx) sum[dim_idx] += r[dim_idx];
  const double n = static_cast<double>(raws.size());
  for (size_t dim_idx = 0; dim_idx < k; ++dim_idx) dimensions_[dim_idx].mean = sum[dim_idx] / n;
  for (const auto& r : raws)
    for (size_t dim_idx = 0; dim_idx < k; ++dim_idx) {
      const double d = r[dim_idx] - dimensions_[dim_idx].mean;
      sum_sq[dim_idx] += d * d;
    }
  for (size_t dim_idx = 0; dim_idx < k; ++dim_idx) {
    dimensions_[dim_idx].sd = std::sqrt(sum_sq[dim_idx] / n);
    PALIGN_CHECK(dimensions_[dim_idx].sd > 0.0, ErrorCode::kInvalidArgument, "[scoring.graders] grader '",
                 dimensions_[dim_idx].name, "' is constant on the reference sample of ", raws.size(),
                 " texts; use a larger or more varied sample");
  }
  reference_size_ = static_cast<int64_t>(raws.size());
}

std::vector<std::string> GraderSet::names() const {
  std::vector<std::string> out;
  for (const auto& d : dimensions_) out.push_back(d.name);
  return out;
}

std::vector<double> GraderSet::raw(std::string_view text) const {
  std::vector<double> out;
  out.reserve(dimensions_.size());
  if (!topics_.empty()) {
    const auto lp = model_.log_posterior(text, topic_evidence_tokens_);
    for (int class_idx : topic_index_)
      out.push_back(std::clamp(NaiveBayes::log_odds(lp, class_idx), -topic_clip_, topic_clip_));
  }
  for (const auto& style : styles_) out.push_back(style_grader(style).score(text));
  return out;
}

std::vector<double> GraderSet::z(std::string_view text) const {
  auto out = raw(text);
  for (size_t dim_idx = 0; dim_idx < out.size(); ++dim_idx)
    out[dim_idx] = (out[dim_idx] - dimensions_[dim_idx].mean) / dimensions_[dim_idx].sd;
  return out;
}

std::string GraderSet::to_json() const {
  nlohmann::json dims = nlohmann::json::array();
  for (size_t dim_idx = 0; dim_idx < dimensions_.size(); ++dim_idx) {
    const auto& d = dimensions_[dim_idx];
    dims.push_back({{"name", d.name},
                    {"kind", dim_idx < topics_.size() ? "topic" : "style"},
                    {"version", d.version},
                    {"mean", d.mean},
                    {"sd", d.sd}});
  }
  nlohmann::json j{{"format", kFormat},
                   {"version", kVersion},
                   {"topic_clip", topic_clip_},
                   {"topic_evidence_tokens", topic_evidence_tokens_},
                   {"topics", topics_},
                   {"styles", styles_},
                   {"reference_size", reference_size_},
                   {"dimensions", dims},
                   {"naive_bayes", nlohmann::json::parse(model_.to_json())}};
  return j.dump();
}

GraderSet GraderSet::from_json(std::string_view json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.graders] malformed JSON: ", e.what());
  }
  PALIGN_CHECK(j.is_object() && j.value("format", "") == kFormat, ErrorCode::kInvalidArgument,
               "[scoring.graders] expected format '", kFormat, "'", kHint);
  PALIGN_CHECK(j.value("version", 0) >= 1 && j.value("version", 0) <= kVersion, ErrorCode::kInvalidArgument,
               "[scoring.graders] unsupported version ", j.value("version", 0), " (this build reads 1..", kVersion, ")",
               kHint);
  try {
    PALIGN_CHECK(j.at("topic_clip").get<double>() > 0.0 && j.at("topic_evidence_tokens").get<double>() > 0.0,
                 ErrorCode::kInvalidArgument, "[scoring.graders] topic_clip and topic_evidence_tokens must be positive",
                 kHint);
    GraderSet set(NaiveBayes::from_json(j.at("naive_bayes").dump()), j.at("topics").get<std::vector<std::string>>(),
                  j.at("styles").get<std::vector<std::string>>(), j.at("topic_clip").get<double>(),
                  j.at("topic_evidence_tokens").get<double>());
    const auto& dims = j.at("dimensions");
    PALIGN_CHECK(dims.size() == set.dimensions_.size(), ErrorCode::kInvalidArgument, "[scoring.graders] ", dims.size(),
                 " dimensions stored but ", set.dimensions_.size(), " graders named", kHint);
    for (size_t dim_idx = 0; dim_idx < dims.size(); ++dim_idx) {
      GraderDimension& d = set.dimensions_[dim_idx];
      const auto name = dims[dim_idx].at("name").get<std::string>();
      const auto version = dims[dim_idx].at("version").get<std::string>();
      PALIGN_CHECK(name == d.name, ErrorCode::kInvalidArgument, "[scoring.graders] dimension ", dim_idx, " is '", name,
                   "', expected '", d.name, "'", kHint);
      PALIGN_CHECK(version == d.version, ErrorCode::kConflict, "[scoring.graders] grader '", name, "' is version ",
                   version, " in the file but ", d.version, " in this build", kHint);
      d.mean = dims[dim_idx].at("mean").get<double>();
      d.sd = dims[dim_idx].at("sd").get<double>();
      PALIGN_CHECK(d.sd > 0.0, ErrorCode::kInvalidArgument, "[scoring.graders] grader '", name, "' has sd ", d.sd,
                   kHint);
    }
    set.reference_size_ = j.at("reference_size").get<int64_t>();
    return set;
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.graders] malformed grader set: ", e.what(), kHint);
  }
}

}  // namespace palign::scoring
