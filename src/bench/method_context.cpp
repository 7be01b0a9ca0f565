// The engine shared by bench methods: pooled backbone features with a cache, sample pools, single samples.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "palign/base/error.h"
#include "palign/bench/method.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"

namespace palign::bench {

MethodContext::MethodContext(const runtime::Model& model, const runtime::Tokenizer& tokenizer,
                             GenerationSettings settings, uint64_t seed, const std::string& feature_cache_dir,
                             const std::string& features)
    : model_(model),
      tokenizer_(tokenizer),
      settings_(settings),
      seed_(seed),
      features_(std::make_unique<scoring::FeatureCache>(
          model, tokenizer, feature_cache_dir, 32,
          features.empty() ? scoring::FeatureSpec::recommended() : scoring::FeatureSpec::parse(features))) {}

MethodContext::~MethodContext() = default;

scoring::FeatureCache& MethodContext::cache(const std::string& spec) {
  if (spec.empty() || spec == features_->spec().text()) return *features_;
  auto& c = other_features_[spec];
  if (!c) c = std::make_unique<scoring::FeatureCache>(model_, tokenizer_, "", 32, scoring::FeatureSpec::parse(spec));
  return *c;
}

int64_t MethodContext::feature_dim(const std::string& spec) { return cache(spec).dim(); }

const scoring::FeatureSpec& MethodContext::feature_spec() const { return features_->spec(); }

void MethodContext::precompute_features(const std::vector<std::pair<std::string, std::string>>& texts,
                                        const std::string& spec) {
  std::vector<scoring::TextPair> pairs;
  for (const auto& [prompt, response] : texts) pairs.push_back({prompt, response});
  (void)cache(spec).features(pairs);
}

const std::vector<float>& MethodContext::features(const std::string& prompt, const std::string& response,
                                                  const std::string& spec) {
  return cache(spec).feature({prompt, response});
}

const std::vector<Response>& MethodContext::pool(const std::string& prompt) const {
  auto it = pools_.find(prompt);
  PALIGN_CHECK(it != pools_.end(), ErrorCode::kNotFound, "[bench.pool] no sample pool for the prompt '", prompt,
               "'; the runner pools every generation prompt before generating");
  return it->second;
}

void MethodContext::set_pool(const std::string& prompt, std::vector<Response> samples) {
  pools_[prompt] = std::move(samples);
}

Response MethodContext::sample(const std::vector<int64_t>& prompt_ids, uint64_t seed) const {
  runtime::GenerateOptions g;
  g.max_new_tokens = settings_.max_new_tokens;
  g.sampling = {.temperature = settings_.temperature, .top_p = settings_.top_p, .seed = seed};
  if (tokenizer_.eos_id()) g.stop_ids = {*tokenizer_.eos_id()};
  auto results = runtime::generate(model_, &tokenizer_, prompt_ids, g, 1);
  const auto n = static_cast<int64_t>(results[0].ids.size());
  return {std::move(results[0].text), n, std::max<int64_t>(1, n), 0.0};
}

std::vector<Response> MethodContext::sample_each(const std::vector<std::vector<int64_t>>& prompts, uint64_t seed,
                                                 const RowResidualHook& row_residual_hook) const {
  runtime::GenerateOptions g;
  g.max_new_tokens = settings_.max_new_tokens;
  g.sampling = {.temperature = settings_.temperature, .top_p = settings_.top_p, .seed = seed};
  if (tokenizer_.eos_id()) g.stop_ids = {*tokenizer_.eos_id()};
  g.row_residual_hook = row_residual_hook;
  auto results = runtime::generate_each(model_, &tokenizer_, prompts, g);
  int64_t steps = 1;
  for (const auto& r : results) steps = std::max<int64_t>(steps, static_cast<int64_t>(r.ids.size()));
  std::vector<Response> out;
  for (auto& r : results) out.push_back({std::move(r.text), static_cast<int64_t>(r.ids.size()), steps, 0.0});
  return out;
}

bool MethodContext::ask(const std::string& user_id, const std::string& prompt, const std::string& a,
                        const std::string& b, const std::string& key) const {
  PALIGN_CHECK(static_cast<bool>(ask_), ErrorCode::kInternal,
               "[bench.ask] no simulated user to ask: the runner sets one up before fitting");
  const bool known = std::any_of(elicitation_prompts_.begin(), elicitation_prompts_.end(),
                                 [&](const ElicitationPrompt& e) { return e.prompt == prompt; });
  PALIGN_CHECK(known, ErrorCode::kInvalidArgument, "[bench.ask] '", prompt,
               "' is not a training prompt; ask only about elicitation_prompts()");
  return ask_(user_id, prompt, a, b, key);
}

std::shared_ptr<void> MethodContext::shared_erased(const std::string& key, std::type_index type,
                                                   const std::function<std::shared_ptr<void>()>& make) {
  auto it = shared_.find(key);
  if (it == shared_.end()) {
    it = shared_.emplace(key, SharedEntry{make(), type}).first;
    shared_made_.push_back(key);
  }
  PALIGN_CHECK(it->second.type == type, ErrorCode::kInternal, "[bench.MethodContext] shared object '", key,
               "' was made as ", it->second.type.name(), ", not ", type.name());
  return it->second.object;
}

std::vector<Response> Method::generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                             MethodContext& ctx) {
  std::vector<Response> out;
  for (const auto& u : users) out.push_back(generate(u, prompt, ctx));
  return out;
}

}  // namespace palign::bench
