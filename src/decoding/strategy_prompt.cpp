// prompt: the preference statement and the user's liked responses most similar to the prompt (word overlap) before
// it, then the batched plain sampler (with the policy's adapter).
#include <algorithm>

#include "palign/base/error.h"
#include "palign/decoding/prompting.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/preference_data.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class PromptStrategy final : public Strategy {
 public:
  explicit PromptStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        adapter_(detail::load_adapter(setup, "prompt")),
        retrieve_(setup.options.retrieve) {
    const StrategyOptions& o = setup.options;
    const Personalization* profile = setup.profile;
    PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                 "[decoding.prompt] --strategy prompt encodes text, but the model directory has no tokenizer.json");
    statement_ = !o.statement.empty() ? o.statement : profile ? profile->statement : "";
    const std::filesystem::path history = !o.history.empty() ? std::filesystem::path(o.history)
                                          : profile          ? profile->history
                                                             : std::filesystem::path();
    PALIGN_CHECK(!statement_.empty() || !history.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.prompt] --strategy prompt needs --statement TEXT, --history PAIRS.jsonl or a "
                 "--user-profile with either");
    PALIGN_CHECK(retrieve_ >= 0, ErrorCode::kInvalidArgument, "[decoding.prompt] --retrieve must be >= 0, got ",
                 retrieve_);
    if (!history.empty()) {
      const std::string who = profile ? profile->user_id : "";
      size_t others = 0;
      for (const auto& r : scoring::read_preference_jsonl(history))
        if (who.empty() || r.user_id.empty() || r.user_id == who) {
          const std::string doc = r.prompt + r.chosen;
          if (std::find(liked_.begin(), liked_.end(), doc) == liked_.end()) liked_.push_back(doc);
        } else {
          ++others;
        }
      if (others > 0)
        setup_notes_.push_back(std::to_string(others) + " pairs of " + history.string() +
                               " belong to users other than '" + who + "' and were left out");
    }
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    const std::string prompt_text =
        tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
    std::vector<std::string> ranked;
    for (size_t i : rank_by_overlap(prompt_text, liked_)) ranked.push_back(liked_[i]);
    const int64_t max_position = model_.config().max_position;
    const int64_t room = max_position - std::min<int64_t>(o.max_new_tokens, max_position - 1);
    size_t used = 0;
    const auto context = personalized_prompt(*tokenizer_, statement_, ranked, request.prompt, room,
                                             static_cast<size_t>(retrieve_), &used);
    notes_ = setup_notes_;
    built_prompt_tokens_ = static_cast<int64_t>(context.size());
    const size_t wanted = std::min(ranked.size(), static_cast<size_t>(retrieve_));
    if (used < wanted)
      notes_.push_back("--retrieve " + std::to_string(retrieve_) + ": " + std::to_string(used) + " of the " +
                       std::to_string(wanted) + " most similar liked responses fit in the context (" +
                       std::to_string(room) + " tokens before the new ones); the rest were left out");
    return runtime::generate(model_, tokenizer_, context, o, request.n);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  int64_t retrieve_;
  std::string statement_;
  std::vector<std::string> liked_;
  std::vector<std::string> setup_notes_;
};

}  // namespace

std::unique_ptr<Strategy> make_prompt_strategy(const StrategySetup& setup) {
  return std::make_unique<PromptStrategy>(setup);
}

}  // namespace palign::decoding
