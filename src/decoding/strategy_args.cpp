// args: ARGS (Khanov et al. 2024), the policy's top-k tokens v scored log p(v) + w · r(prefix + v) by a
// sequence-classification reward model over the policy's vocabulary; a multi-objective reward is scored as the
// profile's weighted sum of its labels.
#include <fstream>
#include <iterator>

#include "palign/base/error.h"
#include "palign/runtime/heads.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ArgsStrategy final : public Strategy {
 public:
  explicit ArgsStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        models_(setup),
        k_(setup.options.args_k),
        w_(setup.options.args_w) {
    detail::refuse_adapter(setup);
    const std::string& given = !setup.options.reward.empty() ? setup.options.reward : setup.options.reward_model;
    PALIGN_CHECK(!given.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.args] --strategy args needs --reward DIR, a sequence-classification reward model (and "
                 "--args-k K --args-w W)");
    PALIGN_CHECK(k_ >= 1, ErrorCode::kInvalidArgument, "[decoding.args] --args-k must be at least 1, got ", k_);
    const std::filesystem::path dir = given, policy = setup.model_dir;
    if (std::filesystem::exists(policy / "tokenizer.json") && std::filesystem::exists(dir / "tokenizer.json"))
      PALIGN_CHECK(file_text(policy / "tokenizer.json") == file_text(dir / "tokenizer.json"),
                   ErrorCode::kInvalidArgument, "[decoding.args] the reward model's tokenizer (", dir.string(),
                   ") differs from the policy's; ARGS scores the policy's tokens, so both must share one tokenizer");
    reward_ = &models_.load(dir);
    if (setup.profile && reward_->config().num_labels > 1)
      reward_ = &models_.keep(runtime::weighted_classifier(
          *reward_, setup.profile->weights_for(reward_->config().id2label, /*missing_zero=*/true)));
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    return detail::decode_each([&] { return make_args(model_, *reward_, k_, w_, request.prompt); }, request.prompt,
                               request, model_, tokenizer_);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  detail::ModelSet models_;
  int64_t k_;
  double w_;
  const runtime::Model* reward_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_args_strategy(const StrategySetup& setup) {
  return std::make_unique<ArgsStrategy>(setup);
}

}  // namespace palign::decoding
