// Private to the strategies (strategy_*.cpp): what several of them share — the policy's adapter, other models by
// directory, weights resolved from --weights or the profile, and the loop that decodes one scorer per output.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "palign/decoding/strategies.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/scoring/reward_model.h"

namespace palign::decoding::detail {

// The policy's LoRA adapter from setup.adapter (none when empty). A user-conditioned (pdpo) adapter is refused
// unless allow_user_tokens (only the sample strategy puts its user tokens before the prompt).
std::optional<runtime::LoraAdapter> load_adapter(const StrategySetup& setup, const char* strategy,
                                                 bool allow_user_tokens = false);
// Throws kInvalidArgument when setup names an adapter: the strategy decodes with its own models, which may be adapter
// directories given as `instead` (e.g. "--models").
void refuse_adapter(const StrategySetup& setup, const char* strategy, const char* instead);

// Models by directory: the policy itself for its own directory, else loaded once and kept. A directory may hold a
// model (config.json) or a LoRA adapter (adapter_config.json), merged into the base it names when that exists, else
// into the policy.
class ModelSet {
 public:
  explicit ModelSet(const StrategySetup& setup)
      : policy_(*setup.model), policy_dir_(setup.model_dir), inputs_(setup.inputs) {}
  // dir: a name of setup.inputs.models or .adapters (an adapter merged into the policy once), else a directory.
  const runtime::Model& load(const std::filesystem::path& dir);
  // The policy with setup.adapter merged into it (the policy itself without one). strategy names the caller in errors.
  const runtime::Model& policy(const StrategySetup& setup, const char* strategy);
  runtime::Model& keep(std::unique_ptr<runtime::Model> model);

 private:
  const runtime::Model& policy_;
  std::filesystem::path policy_dir_;
  std::vector<std::unique_ptr<runtime::Model>> loaded_;
  StrategyInputs inputs_;
  std::map<std::filesystem::path, const runtime::Model*> by_dir_;
  std::map<std::string, const runtime::Model*> by_name_;  // in-memory adapters merged into the policy
  const runtime::Model* adapted_ = nullptr;               // the policy with --adapter merged
};

// Whom a personalized reward scores for: --user / --user-pairs, else the profile's user when the reward has seen them,
// else the profile's history as a new user's pairs. Throws kInvalidArgument for --user / --user-pairs with a reward
// that is the same for every user.
struct RewardUser {
  std::string user;
  std::vector<scoring::PreferenceRecord> pairs;
};
RewardUser reward_user(const StrategySetup& setup, const scoring::RewardModel& reward, const std::string& reward_dir,
                       const char* strategy);

// One weight per name: text as numbers in the names' order or as name=number pairs, else the profile's weights of
// those names (missing_zero: a dimension the profile does not weigh gets 0). what: "models in --models".
std::vector<double> resolve_weights(const std::string& text, const std::vector<std::string>& names,
                                    const Personalization* profile, const std::string& what, bool missing_zero = false);

// request.n outputs, output i from a fresh scorer make() decoded from prompt with seed + i; *cost: their tokens, and
// passes_per_token forward passes per token (the models the scorer runs per step).
std::vector<runtime::GenerateResult> decode_each(const std::function<std::unique_ptr<NextTokenScorer>()>& make,
                                                 const std::vector<int64_t>& prompt, const StrategyRequest& request,
                                                 const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                                 int64_t passes_per_token, StrategyCost* cost);

// The request's own profile, else fallback (the setup's).
const Personalization* request_profile(const StrategyRequest& request, const Personalization* fallback);
// Throws kInvalidArgument for a request that brings a profile to a strategy whose user is fixed at setup.
void refuse_request_profile(const StrategyRequest& request, const char* strategy);
// Whether requests can be decoded in one generate_each call (their options equal but for the seed). Throws
// kInvalidArgument for a request with n != 1.
bool batchable(std::span<const StrategyRequest> requests);
// A batch's cost: every row's tokens, one pass per step of the longest row.
StrategyCost batch_cost(const std::vector<runtime::GenerateResult>& results);
// The requests as rows of one generate_each under options (the strategy's, from the first request): row i decodes
// prompt_of(requests[i]) (called in order) with requests[i]'s seed; *cost receives the batch's cost.
std::vector<runtime::GenerateResult> decode_rows(
    const runtime::Model& model, const runtime::Tokenizer* tokenizer, std::span<const StrategyRequest> requests,
    runtime::GenerateOptions options, const std::function<std::vector<int64_t>(const StrategyRequest&)>& prompt_of,
    StrategyCost* cost);

// ARGS's loop (args, value): request.n outputs of make_args(policy, scorer, k, w); *rewards: the scorer's first
// score of the prompt and each whole output (what its last step was scored by).
std::vector<runtime::GenerateResult> decode_args(const runtime::Model& policy, const runtime::Model& scorer, int64_t k,
                                                 double w, const StrategyRequest& request,
                                                 const runtime::Tokenizer* tokenizer, StrategyCost* cost,
                                                 std::vector<double>* rewards);

// Throws kInvalidArgument when both directories hold a tokenizer.json and they differ: a model scoring the policy's
// tokens (args' reward, value's value model) must share its tokenizer. what: "the reward model".
void check_same_tokenizer(const std::filesystem::path& policy_dir, const std::filesystem::path& dir,
                          const char* strategy, const char* what);

}  // namespace palign::decoding::detail
