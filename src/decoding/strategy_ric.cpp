// ric: a Rewards-in-Context policy (Yang et al. 2024; `palign train policy --method ric`) asked for the scores a user
// wants: scoring::reward_prompt writes the targets before the prompt and the adapter decodes from there. Targets are
// --ric-targets (name=value; a label not named asks for its median), else the user's weights over the labels mapped
// onto each label's training scores (the manifest's quantiles): w̃ = w / ‖w‖, and
//   scores     t_k = p50_k + w̃_k (p90_k − p50_k) for w̃_k ≥ 0, p50_k + w̃_k (p50_k − p10_k) otherwise (a user who
//              wants only k asks for k's 90th percentile);
//   direction  DPA's unit direction (Wang et al. 2024): t = p50 + s·w̃, one scale s (the largest half-spread
//              (p90_k − p10_k) / 2), so only the direction of the weights matters.
// Without weights or targets, every label's median.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/rewards_in_context.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

namespace fs = std::filesystem;

class RicStrategy final : public Strategy {
 public:
  explicit RicStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        profile_(setup.profile),
        targets_(setup.options.ric_targets),
        direction_(setup.options.ric_mode == "direction") {
    const StrategyOptions& o = setup.options;
    PALIGN_CHECK(o.ric_mode == "scores" || o.ric_mode == "direction", ErrorCode::kInvalidArgument,
                 "[decoding.ric] --ric-mode must be scores or direction, got '", o.ric_mode, "'");
    PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                 "[decoding.ric] the scores are written as text before the prompt, but the model directory has no "
                 "tokenizer.json");
    if (setup.inputs.ric_adapter && o.ric.empty()) {  // held in memory
      adapter_ = setup.inputs.ric_adapter;
      labels_ = setup.inputs.ric_labels;
      quantiles_ = setup.inputs.ric_quantiles;
      PALIGN_CHECK(quantiles_.size() == 3, ErrorCode::kInvalidArgument,
                   "[decoding.ric] give the p10, p50 and p90 of the training scores");
    } else {
      load(o.ric);
    }
    for (const auto& q : quantiles_)
      PALIGN_CHECK(q.size() == labels_.size(), ErrorCode::kInvalidArgument, "[decoding.ric] ", labels_.size(),
                   " labels but ", q.size(), " quantiles of each");
    std::string known;
    for (const auto& l : labels_) known += (known.empty() ? "" : ", ") + l;
    for (const auto& item : split_list(targets_)) {
      const size_t eq = item.find('=');
      const std::string name = item.substr(0, eq);
      const auto it = std::find(labels_.begin(), labels_.end(), name);
      PALIGN_CHECK(eq != std::string::npos && it != labels_.end(), ErrorCode::kInvalidArgument,
                   "[decoding.ric] --ric-targets: '", item, "' is not label=score over the policy's labels (", known,
                   ")");
      char* end = nullptr;
      const std::string value = item.substr(eq + 1);
      const double v = std::strtod(value.c_str(), &end);
      PALIGN_CHECK(!value.empty() && end == value.c_str() + value.size() && std::isfinite(v),
                   ErrorCode::kInvalidArgument, "[decoding.ric] --ric-targets: '", item,
                   "' does not end in a finite number");
      explicit_[static_cast<size_t>(it - labels_.begin())] = v;
    }
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    const std::vector<double> t = targets(detail::request_profile(request, profile_));
    const std::string prompt_text =
        request.prompt_text ? *request.prompt_text
                            : tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()),
                                                 /*skip_special=*/true);
    const std::string text = scoring::reward_prompt(prompt_text, labels_, t);
    notes_ = {"asked for " + text.substr(0, text.size() - prompt_text.size())};
    const std::vector<int64_t> ids = encode_prompt(*tokenizer_, text);
    built_prompt_tokens_ = static_cast<int64_t>(ids.size());
    std::vector<runtime::GenerateResult> out;
    cost_ = {};
    runtime::GenerateOptions o = request.options;
    o.linear_hook = adapter_;
    for (int64_t i = 0; i < request.n; ++i) {
      o.sampling.seed = request.options.sampling.seed + static_cast<uint64_t>(i);
      out.push_back(runtime::generate(model_, tokenizer_, ids, o)[0]);
      cost_.tokens += static_cast<int64_t>(out.back().ids.size());
      cost_.passes += static_cast<int64_t>(out.back().ids.size()) + 1;
    }
    return out;
  }

 private:
  // The adapter and the manifest's labels and quantiles of a `train policy --method ric` directory.
  void load(const std::string& dir) {
    PALIGN_CHECK(!dir.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.ric] --strategy ric needs --ric DIR, an adapter from `palign train policy --method ric`");
    const fs::path manifest = fs::path(dir) / "palign_policy.json";
    PALIGN_CHECK(fs::exists(manifest), ErrorCode::kNotFound, "[decoding.ric] ", dir,
                 " has no palign_policy.json; give the --out directory of `palign train policy --method ric`");
    const auto j = read_json_file(manifest, "decoding.ric");
    PALIGN_CHECK(j.is_object() && j.value("method", "") == "ric" && j.contains("ric") && j["ric"].is_object(),
                 ErrorCode::kInvalidArgument, "[decoding.ric] ", manifest.string(),
                 " is not a ric policy (its method is not \"ric\"); train one with `palign train policy --method ric`");
    try {
      labels_ = j["ric"].at("labels").get<std::vector<std::string>>();
      for (const char* q : {"p10", "p50", "p90"}) quantiles_.push_back(j["ric"].at(q).get<std::vector<double>>());
    } catch (const nlohmann::json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[decoding.ric] ", manifest.string(),
                   "'s \"ric\" lacks labels or score quantiles (p10, p50, p90)");
    }
    owned_ = runtime::LoraAdapter::load(dir, model_.config());
    adapter_ = &*owned_;
  }

  // The scores asked for (see the top).
  std::vector<double> targets(const Personalization* profile) const {
    const auto &p10 = quantiles_[0], &p50 = quantiles_[1], &p90 = quantiles_[2];
    std::vector<double> t = p50;
    if (!explicit_.empty()) {
      for (const auto& [k, v] : explicit_) t[k] = v;  // the others ask for their median
      return t;
    }
    if (!profile) return t;
    std::vector<double> w = profile->weights_for(labels_, /*missing_zero=*/true);
    double norm = 0;
    for (double x : w) norm += x * x;
    if (norm == 0) return t;
    double scale = 0;
    for (size_t k = 0; k < labels_.size(); ++k) scale = std::max(scale, (p90[k] - p10[k]) / 2);
    for (size_t k = 0; k < labels_.size(); ++k) {
      const double u = w[k] / std::sqrt(norm);
      t[k] = direction_ ? p50[k] + scale * u : p50[k] + u * (u >= 0 ? p90[k] - p50[k] : p50[k] - p10[k]);
    }
    return t;
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  const Personalization* profile_;
  std::string targets_;
  bool direction_;
  std::vector<std::string> labels_;
  std::vector<std::vector<double>> quantiles_;  // p10, p50, p90, each [K]
  std::map<size_t, double> explicit_;           // --ric-targets by label index
  std::optional<runtime::LoraAdapter> owned_;
  const runtime::LoraAdapter* adapter_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_ric_strategy(const StrategySetup& setup) { return std::make_unique<RicStrategy>(setup); }

}  // namespace palign::decoding
