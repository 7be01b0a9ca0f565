// steer: Σ_k w_k · λ · v_k added to the residual stream (steering vectors from `palign train steer`, weights from
// --weights or the profile), then the batched plain sampler (with the policy's adapter).
#include "palign/base/error.h"
#include "palign/decoding/steering.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class SteerStrategy final : public Strategy {
 public:
  explicit SteerStrategy(const StrategySetup& setup)
      : model_(*setup.model), tokenizer_(setup.tokenizer), adapter_(detail::load_adapter(setup, "steer")) {
    const std::filesystem::path file = setup.options.vectors;
    PALIGN_CHECK(!file.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.steer] --strategy steer needs --vectors FILE (from palign train steer)");
    const auto vectors = scoring::load_steering_vectors(file, model_.config());
    std::vector<std::string> names;
    for (const auto& v : vectors) names.push_back(v.name);
    const auto weights =
        detail::resolve_weights(setup.options.weights, names, setup.profile, "vectors in " + file.string(), true);
    hook_ = steering_hook(vectors, weights, setup.options.lambda);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    o.residual_hook = hook_;
    return runtime::generate(model_, tokenizer_, request.prompt, o, request.n);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  std::function<void(int64_t, at::Tensor&)> hook_;
};

}  // namespace

std::unique_ptr<Strategy> make_steer_strategy(const StrategySetup& setup) {
  return std::make_unique<SteerStrategy>(setup);
}

}  // namespace palign::decoding
