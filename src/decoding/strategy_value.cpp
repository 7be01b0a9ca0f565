// value: value-guided decoding (Controlled Decoding's CD-FUDGE, Mudgal et al. 2024; VAS, Han et al. 2024), the
// policy's top-k tokens v sampled from log p(v) + β · V(prefix + v), V a prefix value model from `palign train value`
// (training/value_trainer.h) — a linear head on the backbone's final state that predicts the reward a rollout from
// the prefix will get, where ARGS reads a sequence reward off partial text. The k extended prefixes are scored in one
// batched pass of the value model over its cached prefix, as ARGS's reward (make_args). A value model with several
// labels (one per reward label) is folded by the profile's weights, as a multi-objective reward.
#include <filesystem>

#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

namespace fs = std::filesystem;

class ValueStrategy final : public Strategy {
 public:
  explicit ValueStrategy(const StrategySetup& setup)
      : models_(setup),
        model_(models_.policy(setup, "value")),
        tokenizer_(setup.tokenizer),
        k_(setup.options.value_k),
        beta_(setup.options.value_beta) {
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.value] --value-k must be at least 1, got ", k_);
    const std::string& dir = setup.options.value;
    if (setup.inputs.reward_classifier && dir.empty()) {
      value_ = setup.inputs.reward_classifier;  // the user's value head, held in memory
      return;
    }
    PALIGN_CHECK(!dir.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.value] --strategy value needs --value DIR, a prefix value model from `palign train value` "
                 "(and --value-k K --value-beta B)");
    PALIGN_CHECK(fs::exists(fs::path(dir) / "config.json"), ErrorCode::kNotFound, "[decoding.value] ", dir,
                 " has no config.json; give the --out directory of `palign train value`");
    detail::check_same_tokenizer(setup.model_dir, dir, "value", "the value model");
    value_ = &models_.load(dir);
    const auto& labels = value_->config().id2label;
    if (value_->config().num_labels > 1) {
      PALIGN_CHECK(setup.profile, ErrorCode::kInvalidArgument, "[decoding.value] ", dir, " predicts ",
                   value_->config().num_labels, " rewards (", labels.empty() ? "" : labels.front(),
                   ", ...); pass --user-profile DIR with weights over them");
      value_ = &models_.keep(runtime::weighted_classifier(*value_, setup.profile->weights_for(labels, true)));
    }
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, "value");
    // Per token: the policy's pass and one batched pass of the value model over the k candidates; each output's
    // reward is its value (the reward predicted for the whole text).
    return detail::decode_args(model_, *value_, k_, beta_, request, tokenizer_, &cost_, &output_rewards_);
  }

 private:
  detail::ModelSet models_;
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  int64_t k_;
  double beta_;
  const runtime::Model* value_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_value_strategy(const StrategySetup& setup) {
  return std::make_unique<ValueStrategy>(setup);
}

}  // namespace palign::decoding
