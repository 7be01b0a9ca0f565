// contrast: contrastive context steering, l_with + λ · (l_with − l_without), where "with" continues the user's
// preference prompt (--context, or the profile's statement: the request's when it brings one) before the prompt and
// "without" the prompt alone. A request profile without a statement decodes the prompt alone.
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/decoding/prompting.h"
#include "palign/runtime/tokenizer.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class ContrastStrategy final : public Strategy {
 public:
  explicit ContrastStrategy(const StrategySetup& setup)
      : models_(setup),
        model_(models_.policy(setup, "contrast")),
        tokenizer_(setup.tokenizer),
        lambda_(setup.options.lambda),
        given_(setup.options.context),
        profile_(setup.profile) {
    context_ids_ = setup.options.context_ids;
    // Without a profile now, every request must bring one.
    if (profile_) (void)context(nullptr);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    const std::string text = context(request.profile);
    std::vector<int64_t> with_context;
    if (!context_ids_.empty()) {
      PALIGN_CHECK(!request.prompt_text, ErrorCode::kInvalidArgument,
                   "[decoding.contrast] --context-ids goes with --prompt-ids; with --prompt use --context TEXT");
      with_context = parse_ids(context_ids_, "--context-ids");
      with_context.insert(with_context.end(), request.prompt.begin(), request.prompt.end());
    } else if (!request.prompt_text) {
      // The preference text as a text of its own before the prompt's ids.
      PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                   "[decoding.contrast] the model has no tokenizer.json to encode the preference text; use "
                   "--context-ids");
      with_context = personalized_prompt(*tokenizer_, text, {}, request.prompt, model_.config().max_position);
    } else {
      PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                   "[decoding.contrast] --context TEXT needs a tokenizer.json");
      const auto ids = tokenizer_->encode(text + *request.prompt_text, /*add_special=*/true);
      with_context.assign(ids.begin(), ids.end());
    }
    built_prompt_tokens_ = static_cast<int64_t>(with_context.size());
    return detail::decode_each([&] { return make_contrast(model_, with_context, request.prompt, lambda_); },
                               with_context, request, model_, tokenizer_, /*passes_per_token=*/2, &cost_);
  }

 private:
  // The preference prompt: --context, else the request's profile's statement (may be empty), else the setup's.
  std::string context(const Personalization* request_profile) const {
    if (!given_.empty() || !context_ids_.empty()) return given_;
    if (request_profile) return request_profile->statement;
    const std::string statement = profile_ ? profile_->statement : "";
    PALIGN_CHECK(!statement.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.contrast] --strategy contrast needs --context TEXT (or --context-ids with --prompt-ids, or "
                 "a --user-profile with a statement): the user's preference prompt");
    return statement;
  }

  detail::ModelSet models_;
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  double lambda_;
  std::string given_, context_ids_;
  const Personalization* profile_;
};

}  // namespace

std::unique_ptr<Strategy> make_contrast_strategy(const StrategySetup& setup) {
  return std::make_unique<ContrastStrategy>(setup);
}

}  // namespace palign::decoding
