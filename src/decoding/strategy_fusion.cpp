// fusion: Σ_i w_i · log_softmax(logits_i) over --models (MOD over per-dimension policies, GenARM / PAD over a base
// and autoregressive rewards), weights from --weights or the profile, the request's when it brings one (a model's
// dimension is its directory's name). LoRA adapters held in memory (StrategyInputs) are fused as rows of one batched
// pass; directories are loaded (adapters merged into their base) and run one pass each.
#include <algorithm>

#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class FusionStrategy final : public Strategy {
 public:
  explicit FusionStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        models_(setup),
        weights_text_(setup.options.weights),
        profile_(setup.profile) {
    detail::refuse_adapter(setup, "fusion", "--models (e.g. --models BASE,ADAPTER_DIR)");
    const auto paths = split_list(setup.options.models);
    PALIGN_CHECK(!paths.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.fusion] --strategy fusion needs --models A,B[,C...] and --weights a,b[,c...]");
    for (const auto& p : paths) names_.push_back(std::filesystem::path(p).lexically_normal().filename().string());
    for (auto& n : names_)
      if (n.empty()) n.assign(1, '?');
    // Adapters held in memory (every model one) are fused as rows of one batched pass.
    const bool all_adapters =
        std::all_of(paths.begin(), paths.end(), [&](const auto& p) { return setup.inputs.adapters.count(p) > 0; });
    for (const auto& p : paths) {
      if (all_adapters)
        adapters_.push_back(setup.inputs.adapters.at(p));
      else
        fused_.push_back(&models_.load(p));
    }
    // Weights known now are checked now (the command line's, the setup's profile).
    if (!weights_text_.empty() || profile_) (void)weights(nullptr);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    const std::vector<double> w = weights(request.profile);
    auto make = [&]() -> std::unique_ptr<NextTokenScorer> {
      if (!adapters_.empty()) return make_lora_fusion(model_, adapters_, w, request.prompt);
      return make_fusion(fused_, w, request.prompt);
    };
    // Adapter rows are one batched pass per token; separate models one pass each.
    const auto passes = adapters_.empty() ? static_cast<int64_t>(fused_.size()) : 1;
    return detail::decode_each(make, request.prompt, request, model_, tokenizer_, passes, &cost_);
  }

 private:
  // One weight per model: --weights, else the request's profile, else the setup's.
  std::vector<double> weights(const Personalization* request_profile) const {
    return detail::resolve_weights(weights_text_, names_, request_profile ? request_profile : profile_,
                                   "models in --models");
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  detail::ModelSet models_;
  std::string weights_text_;
  const Personalization* profile_;
  std::vector<std::string> names_;
  std::vector<const runtime::Model*> fused_;
  std::vector<const runtime::LoraAdapter*> adapters_;
};

}  // namespace

FusionExperts request_fusion_experts(const std::map<std::string, const runtime::LoraAdapter*>& adapters,
                                     const std::string& models_text, const std::string& weights_text,
                                     const Personalization* profile) {
  FusionExperts out;
  out.names = split_list(models_text);
  PALIGN_CHECK(!out.names.empty(), ErrorCode::kInvalidArgument,
               "[decoding.fusion] fusion needs models A,B[,C...] (adapters by name) and weights a,b[,c...]");
  for (const auto& name : out.names) {
    const auto it = adapters.find(name);
    PALIGN_CHECK(it != adapters.end(), ErrorCode::kInvalidArgument, "[decoding.fusion] no adapter '", name,
                 "' to fuse; name adapters held in memory");
    out.experts.push_back(it->second);
  }
  out.weights = detail::resolve_weights(weights_text, out.names, profile, "models in --models");
  return out;
}

std::unique_ptr<Strategy> make_fusion_strategy(const StrategySetup& setup) {
  return std::make_unique<FusionStrategy>(setup);
}

}  // namespace palign::decoding
