// prompt: the preference statement and the user's liked responses most similar to the prompt (word overlap) before
// it, then the batched plain sampler (with the policy's adapter). The user is the request's profile when it brings
// one, else the setup's (--statement and --history override a profile's). A batch of requests is one batch of rows,
// each with its own built prompt.
#include <algorithm>

#include "palign/base/error.h"
#include "palign/decoding/prompting.h"
#include "palign/runtime/tokenizer.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class PromptStrategy final : public Strategy {
 public:
  explicit PromptStrategy(const StrategySetup& setup)
      : model_(*setup.model),
        tokenizer_(setup.tokenizer),
        adapter_(detail::load_adapter(setup, "prompt")),
        options_(setup.options),
        profile_(setup.profile) {
    PALIGN_CHECK(tokenizer_, ErrorCode::kInvalidArgument,
                 "[decoding.prompt] --strategy prompt encodes text, but the model directory has no tokenizer.json");
    PALIGN_CHECK(options_.retrieve >= 0, ErrorCode::kInvalidArgument, "[decoding.prompt] --retrieve must be >= 0, got ",
                 options_.retrieve);
    // Without a profile now, every request must bring one (or the options say it all).
    if (profile_ || !options_.statement.empty() || !options_.history.empty()) user_ = user_of(profile_);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    notes_.clear();
    const auto context = build(request);
    auto out = runtime::generate(model_, tokenizer_, context, options(request), request.n);
    cost_ = detail::batch_cost(out);
    return out;
  }

  // Every request a row of one batch, each with its own built prompt.
  std::vector<runtime::GenerateResult> generate_batch(std::span<const StrategyRequest> requests) override {
    if (requests.empty() || !detail::batchable(requests)) return Strategy::generate_batch(requests);
    notes_.clear();
    return detail::decode_rows(
        model_, tokenizer_, requests, options(requests[0]), [&](const StrategyRequest& r) { return build(r); }, &cost_);
  }

 private:
  // What the prompt is built from for one user.
  struct User {
    std::string statement;
    std::vector<std::string> liked;  // liked responses (prompt + chosen), each once
    std::vector<std::string> notes;
  };

  User user_of(const Personalization* profile) const {
    User u;
    u.statement = !options_.statement.empty() ? options_.statement : profile ? profile->statement : "";
    const std::filesystem::path history = !options_.history.empty() ? std::filesystem::path(options_.history)
                                          : profile                 ? profile->history
                                                                    : std::filesystem::path();
    const bool has_pairs = profile && options_.history.empty() && !profile->pairs.empty();
    PALIGN_CHECK(!u.statement.empty() || !history.empty() || has_pairs || (profile && profile != profile_),
                 ErrorCode::kInvalidArgument,
                 "[decoding.prompt] --strategy prompt needs --statement TEXT, --history PAIRS.jsonl or a "
                 "--user-profile with either");
    const std::string who = profile ? profile->user_id : "";
    size_t others = 0;
    auto add = [&](const scoring::PreferenceRecord& r) {
      if (!who.empty() && !r.user_id.empty() && r.user_id != who) return void(++others);
      const std::string doc = r.prompt + r.chosen;
      if (std::find(u.liked.begin(), u.liked.end(), doc) == u.liked.end()) u.liked.push_back(doc);
    };
    if (!history.empty())
      for (const auto& r : scoring::read_preference_jsonl(history)) add(r);
    if (has_pairs)
      for (const auto& r : profile->pairs) add(r);
    if (others > 0)
      u.notes.push_back(std::to_string(others) + " pairs of " + (history.empty() ? "the profile" : history.string()) +
                        " belong to users other than '" + who + "' and were left out");
    return u;
  }

  runtime::GenerateOptions options(const StrategyRequest& request) const {
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    return o;
  }

  // The request's prompt with its user's statement and liked responses before it; notes what was left out.
  std::vector<int64_t> build(const StrategyRequest& request) {
    const User user = request.profile ? user_of(request.profile) : user_ ? *user_ : user_of(nullptr);
    for (const auto& n : user.notes)
      if (std::find(notes_.begin(), notes_.end(), n) == notes_.end()) notes_.push_back(n);
    const std::string prompt_text =
        tokenizer_->decode(std::vector<int32_t>(request.prompt.begin(), request.prompt.end()), /*skip_special=*/true);
    std::vector<std::string> ranked;
    for (size_t i : rank_by_overlap(prompt_text, user.liked)) ranked.push_back(user.liked[i]);
    const int64_t max_position = model_.config().max_position;
    const int64_t room = max_position - std::min<int64_t>(request.options.max_new_tokens, max_position - 1);
    std::string statement = user.statement;
    // A statement that does not fit before the prompt is left out (with a note), as documents that do not fit are.
    const int64_t statement_tokens =
        statement.empty() ? 0 : static_cast<int64_t>(tokenizer_->encode(statement, /*add_special=*/true).size()) + 1;
    if (statement_tokens + std::ssize(request.prompt) > room) {
      notes_.push_back("the preference statement (" + std::to_string(statement_tokens) + " tokens) does not fit " +
                       "before the prompt in the context (" + std::to_string(room) +
                       " tokens before the new ones); it was left out");
      statement.clear();
    }
    size_t used = 0;
    const auto context = personalized_prompt(*tokenizer_, statement, ranked, request.prompt, room,
                                             static_cast<size_t>(options_.retrieve), &used);
    built_prompt_tokens_ = static_cast<int64_t>(context.size());
    const size_t wanted = std::min(ranked.size(), static_cast<size_t>(options_.retrieve));
    if (used < wanted)
      notes_.push_back("--retrieve " + std::to_string(options_.retrieve) + ": " + std::to_string(used) + " of the " +
                       std::to_string(wanted) + " most similar liked responses fit in the context (" +
                       std::to_string(room) + " tokens before the new ones); the rest were left out");
    return context;
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  StrategyOptions options_;
  const Personalization* profile_;
  std::optional<User> user_;  // the setup's user, read once
};

}  // namespace

std::unique_ptr<Strategy> make_prompt_strategy(const StrategySetup& setup) {
  return std::make_unique<PromptStrategy>(setup);
}

}  // namespace palign::decoding
