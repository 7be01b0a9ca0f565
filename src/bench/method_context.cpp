// The engine shared by bench methods: pooled backbone features with a cache, sample pools, single samples.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "palign/base/error.h"
#include "palign/bench/method.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::bench {

namespace {
constexpr int64_t kFeatureBatch = 32;
std::string key_of(const std::string& prompt, const std::string& response) {
  return std::to_string(prompt.size()) + ":" + prompt + response;
}
}  // namespace

MethodContext::MethodContext(const runtime::Model& model, const runtime::Tokenizer& tokenizer,
                             GenerationSettings settings, uint64_t seed)
    : model_(model), tokenizer_(tokenizer), settings_(settings), seed_(seed) {}

MethodContext::~MethodContext() = default;

int64_t MethodContext::feature_dim() const { return 2 * model_.config().hidden_size; }

void MethodContext::precompute_features(const std::vector<std::pair<std::string, std::string>>& texts) {
  std::vector<std::pair<std::string, std::string>> todo;
  for (const auto& t : texts)
    if (!features_.count(key_of(t.first, t.second))) todo.push_back(t);
  std::sort(todo.begin(), todo.end());
  todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
  const int64_t window = model_.config().max_position;
  c10::InferenceMode guard;
  for (size_t start = 0; start < todo.size(); start += kFeatureBatch) {
    const size_t end = std::min(todo.size(), start + kFeatureBatch);
    std::vector<std::vector<int32_t>> rows;
    std::vector<int64_t> first;  // first response position of each row
    int64_t longest = 1;
    for (size_t i = start; i < end; ++i) {
      auto ids = tokenizer_.encode(todo[i].first + todo[i].second, /*add_special=*/true);
      const auto n_prompt = static_cast<int64_t>(tokenizer_.encode(todo[i].first, /*add_special=*/true).size());
      if (static_cast<int64_t>(ids.size()) > window) ids.resize(window);
      if (ids.empty()) ids.push_back(tokenizer_.eos_id().value_or(0));
      first.push_back(std::min<int64_t>(n_prompt, static_cast<int64_t>(ids.size()) - 1));
      longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
      rows.push_back(std::move(ids));
    }
    const auto n_rows = static_cast<int64_t>(rows.size());
    at::Tensor ids = at::zeros({n_rows, longest}, at::kLong);
    std::vector<int64_t> n_tokens;
    for (int64_t r = 0; r < n_rows; ++r) {
      for (size_t t = 0; t < rows[r].size(); ++t) ids[r][static_cast<int64_t>(t)] = rows[r][t];
      n_tokens.push_back(static_cast<int64_t>(rows[r].size()));
    }
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kNone;
    fo.return_hidden = true;
    const at::Tensor hidden = model_.forward_uncached({.ids = ids, .n_tokens = n_tokens}, fo).hidden.to(at::kFloat);
    for (int64_t r = 0; r < n_rows; ++r) {
      const int64_t last = n_tokens[r] - 1;
      const at::Tensor mean = hidden[r].slice(0, first[r], last + 1).mean(0);
      const at::Tensor feat = at::cat({mean, hidden[r][last]}).contiguous();
      const float* p = feat.data_ptr<float>();
      features_[key_of(todo[start + r].first, todo[start + r].second)] = std::vector<float>(p, p + feat.numel());
    }
  }
}

const std::vector<float>& MethodContext::features(const std::string& prompt, const std::string& response) {
  auto it = features_.find(key_of(prompt, response));
  if (it != features_.end()) return it->second;
  precompute_features({{prompt, response}});
  return features_.at(key_of(prompt, response));
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

}  // namespace palign::bench
