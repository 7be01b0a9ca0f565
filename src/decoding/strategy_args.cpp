// args: ARGS (Khanov et al. 2024), the policy's top-k tokens v scored log p(v) + w · r(prefix + v) by a
// sequence-classification reward model over the policy's vocabulary; a multi-objective reward is scored as the
// profile's weighted sum of its labels, and a linear reward as its user's weights over its objectives' labels.
#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

namespace fs = std::filesystem;

class ArgsStrategy final : public Strategy {
 public:
  explicit ArgsStrategy(const StrategySetup& setup)
      : models_(setup),
        model_(models_.policy(setup, "args")),
        tokenizer_(setup.tokenizer),
        k_(setup.options.args_k),
        w_(setup.options.args_w) {
    const std::string& given = !setup.options.reward.empty() ? setup.options.reward : setup.options.reward_model;
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.args] --args-k must be at least 1, got ", k_);
    if (setup.inputs.reward_classifier && given.empty()) {
      reward_ = setup.inputs.reward_classifier;  // the user's reward, held in memory
      return;
    }
    PALIGN_CHECK(!given.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.args] --strategy args needs --reward DIR, a sequence-classification reward model (and "
                 "--args-k K --args-w W)");
    std::filesystem::path dir = given;
    std::optional<std::vector<double>> label_weights;
    if (fs::exists(dir / scoring::kRewardManifest) && !fs::exists(dir / "config.json")) {
      // A reward over a classifier's scores (linear: the user's weights over a multi model's labels) is that
      // classifier with those weights, up to a constant per user, which does not change ARGS's choice.
      const auto reward = scoring::RewardModel::load(dir);
      const auto who = detail::reward_user(setup, *reward, given, "args");
      auto weighted = reward->label_weights(who.user, who.pairs);
      PALIGN_CHECK(weighted.has_value(), ErrorCode::kInvalidArgument, "[decoding.args] ", given, " is a ",
                   reward->method(),
                   " reward, which scores whole texts; ARGS scores each candidate token with a sequence-classification "
                   "model: pass a bt or multi directory (or a linear one over it), or use --strategy best_of_n or "
                   "cd_block with this reward");
      dir = weighted->classifier;
      label_weights = std::move(weighted->weights);
    } else {
      PALIGN_CHECK(setup.options.user.empty() && setup.options.user_pairs.empty(), ErrorCode::kInvalidArgument,
                   "[decoding.args] ", given, " is the same for every user; drop --user/--user-pairs");
    }
    detail::check_same_tokenizer(setup.model_dir, dir, "args", "the reward model");
    reward_ = &models_.load(dir);
    if (label_weights)
      reward_ = &models_.keep(runtime::weighted_classifier(*reward_, *label_weights));
    else if (setup.profile && reward_->config().num_labels > 1)
      reward_ = &models_.keep(runtime::weighted_classifier(
          *reward_, setup.profile->weights_for(reward_->config().id2label, /*missing_zero=*/true)));
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, "args");
    // Per token: the policy's pass and one batched pass of the reward over the k candidates.
    return detail::decode_args(model_, *reward_, k_, w_, request, tokenizer_, &cost_, &output_rewards_);
  }

 private:
  detail::ModelSet models_;
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  int64_t k_;
  double w_;
  const runtime::Model* reward_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_args_strategy(const StrategySetup& setup) {
  return std::make_unique<ArgsStrategy>(setup);
}

}  // namespace palign::decoding
