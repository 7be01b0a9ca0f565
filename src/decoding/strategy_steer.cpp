// steer: Σ_k w_k · λ · v_k added to the residual stream (steering vectors from `palign train steer` or held in memory,
// weights from --weights or the profile, the request's own when it brings one), then the batched plain sampler (with
// the policy's adapter). A batch of requests is one batch of rows, each with its own vectors' sum.
#include <ATen/ATen.h>

#include "palign/base/error.h"
#include "palign/decoding/steering.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class SteerStrategy final : public Strategy {
 public:
  explicit SteerStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        adapter_(detail::load_adapter(setup, "steer")),
        weights_text_(setup.options.weights),
        lambda_(setup.options.lambda),
        profile_(setup.profile) {
    const std::filesystem::path file = setup.options.vectors;
    PALIGN_CHECK(!file.empty() || setup.inputs.vectors, ErrorCode::kInvalidArgument,
                 "[decoding.steer] --strategy steer needs --vectors FILE (from palign train steer)");
    vectors_ = file.empty() ? *setup.inputs.vectors : scoring::load_steering_vectors(file, model_.config());
    what_ = "vectors in " + (file.empty() ? std::string("memory") : file.string());
    for (const auto& v : vectors_) names_.push_back(v.name);
    // Weights known now are checked now (the command line's, the setup's profile).
    if (!weights_text_.empty() || profile_) (void)weights(nullptr);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    o.residual_hook = steering_hook(vectors_, weights(request.profile), lambda_);
    auto out = runtime::generate(model_, tokenizer_, request.prompt, o, request.n);
    cost_ = detail::batch_cost(out);
    return out;
  }

  // Every request a row of one batch, its own Σ_k w_k · λ · v_k added to its rows.
  std::vector<runtime::GenerateResult> generate_batch(std::span<const StrategyRequest> requests) override {
    if (requests.empty() || !detail::batchable(requests)) return Strategy::generate_batch(requests);
    const auto B = static_cast<int64_t>(requests.size());
    std::map<int64_t, at::Tensor> deltas;  // layer -> [B, 1, D]
    runtime::GenerateOptions o = requests[0].options;
    for (int64_t b = 0; b < B; ++b)
      for (const auto& [layer, add] : steering_deltas(vectors_, weights(requests[b].profile), lambda_)) {
        auto [it, fresh] = deltas.emplace(layer, at::Tensor());
        if (fresh) it->second = at::zeros({B, 1, add.size(0)});
        it->second[b][0] += add;
      }
    if (adapter_) o.linear_hook = &*adapter_;
    o.row_residual_hook = [&](int64_t layer, at::Tensor& x, const std::vector<int64_t>& rows) {
      const auto it = deltas.find(layer);
      if (it != deltas.end()) x = x + it->second.index_select(0, at::tensor(rows, at::kLong));
    };
    return detail::decode_rows(
        model_, tokenizer_, requests, o, [](const StrategyRequest& r) { return r.prompt; }, &cost_);
  }

 private:
  // One weight per vector: --weights, else the request's profile, else the setup's.
  std::vector<double> weights(const Personalization* request_profile) const {
    if (!weights_text_.empty()) return detail::resolve_weights(weights_text_, names_, nullptr, what_, true);
    return detail::resolve_weights("", names_, request_profile ? request_profile : profile_, what_, true);
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  std::string weights_text_;
  double lambda_;
  const Personalization* profile_;
  std::vector<scoring::SteeringVector> vectors_;
  std::vector<std::string> names_;
  std::string what_;
};

}  // namespace

std::map<int64_t, at::Tensor> request_steering_deltas(const std::vector<scoring::SteeringVector>& vectors,
                                                      const std::string& weights_text, const Personalization* profile,
                                                      double lambda) {
  std::vector<std::string> names;
  for (const auto& v : vectors) names.push_back(v.name);
  const auto weights = detail::resolve_weights(weights_text, names, weights_text.empty() ? profile : nullptr,
                                               "vectors of the steering file", true);
  return steering_deltas(vectors, weights, lambda);
}

std::unique_ptr<Strategy> make_steer_strategy(const StrategySetup& setup) {
  return std::make_unique<SteerStrategy>(setup);
}

}  // namespace palign::decoding
