// fusion: Σ_i w_i · log_softmax(logits_i) over --models (MOD over per-dimension policies, GenARM / PAD over a base
// and autoregressive rewards), weights from --weights or the profile (a model's dimension is its directory's name).
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class FusionStrategy final : public Strategy {
 public:
  explicit FusionStrategy(const StrategySetup& setup)
      : model_(*setup.model), tokenizer_(setup.tokenizer), models_(setup) {
    detail::refuse_adapter(setup, "fusion", "--models (e.g. --models BASE,ADAPTER_DIR)");
    const auto paths = split_list(setup.options.models);
    PALIGN_CHECK(!paths.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.fusion] --strategy fusion needs --models A,B[,C...] and --weights a,b[,c...]");
    std::vector<std::string> names;
    for (const auto& p : paths) names.push_back(std::filesystem::path(p).lexically_normal().filename().string());
    for (auto& n : names)
      if (n.empty()) n = "?";
    weights_ = detail::resolve_weights(setup.options.weights, names, setup.profile, "models in --models");
    for (const auto& p : paths) fused_.push_back(&models_.load(p));
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    return detail::decode_each([&] { return make_fusion(fused_, weights_, request.prompt); }, request.prompt, request,
                               model_, tokenizer_);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  detail::ModelSet models_;
  std::vector<const runtime::Model*> fused_;
  std::vector<double> weights_;
};

}  // namespace

std::unique_ptr<Strategy> make_fusion_strategy(const StrategySetup& setup) {
  return std::make_unique<FusionStrategy>(setup);
}

}  // namespace palign::decoding
