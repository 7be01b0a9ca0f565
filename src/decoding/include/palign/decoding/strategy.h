// One path from a request to tokens: a decoding strategy chosen by name from one registry, its options in one type
// (filled from CLI flags or from JSON, which the server sends), personalized by what a user's profile says.
//
//   sample     the plain sampler (with a LoRA adapter; a pdpo adapter's user tokens before the prompt)
//   prompt     the user's preference statement and liked responses before the prompt (prompting.h)
//   best_of_n  N samples reranked by a reward model (rerank.h)
//   cd_block   block-wise controlled decoding by a reward model (rerank.h)
//   fusion     Σ_i w_i · log_softmax(logits_i) over models (strategies.h)
//   proxy      proxy-tuning: base + α · (expert − anti-expert)
//   steer      steering vectors added to the residual stream (steering.h)
//   contrast   contrastive context steering with the user's preference prompt
//   args       ARGS: the policy's top-k tokens rescored by a reward model
//   cards      CARDS: segment-level rejection sampling by a reward model (rerank.h)
//   value      value-guided decoding: ARGS's rule over a prefix value model (training/value_trainer.h)
//   correct    a draft rewritten by a learned corrector (training/corrector_trainer.h)
//   ric        a Rewards-in-Context policy asked for the user's scores (training/policy_trainer.h, --method ric)
//
// Adding a strategy: a file strategy_<name>.cpp with its class and factory, one line in the registry table
// (strategy.cpp), and its options as fields of StrategyOptions (strategy_options.h) when it has new ones.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "palign/decoding/strategy_options.h"
#include "palign/runtime/generate.h"
#include "palign/scoring/preference_data.h"

namespace palign::runtime {
class LoraAdapter;
class ChatTemplate;
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::scoring {
struct SteeringVector;
}

namespace palign::decoding {

// What a strategy reads from a user's profile (users::UserProfile's fields): weights over named dimensions (fusion
// experts, steering vectors, multi-objective reward labels, matched by name), a free-text statement (prompt,
// contrast), a reward directory that knows the user (best_of_n, cd_block) and the user's labelled pairs (retrieval;
// a personalized reward's evidence for a user it has not seen), from a file (history) or in memory (pairs).
struct Personalization {
  std::string user_id;
  std::map<std::string, double> weights;
  std::string statement;
  std::filesystem::path reward, history;
  std::vector<scoring::PreferenceRecord> pairs;  // with history's: retrieval reads both

  // The weights of names in order. A name without a weight is an error naming it and the weighed dimensions, or
  // (missing_zero) weight 0 — then only weights that cover none of the names are an error.
  std::vector<double> weights_for(const std::vector<std::string>& names, bool missing_zero = false) const;
};

// What a caller holds in memory (the bench's fitted models, a server's loaded ones), used instead of files. Every
// pointer is borrowed and outlives the strategy.
struct StrategyInputs {
  // fusion's --models, proxy's --expert / --antiexpert: models by name, looked up before directories.
  std::map<std::string, const runtime::Model*> models;
  // fusion's --models: LoRA adapters on the policy by name (null: the policy itself). A fusion whose models are all
  // adapters runs them as rows of one batched pass instead of merged copies.
  std::map<std::string, const runtime::LoraAdapter*> adapters;
  // steer: the vectors, instead of --vectors.
  const std::vector<scoring::SteeringVector>* vectors = nullptr;
  // args: a sequence-classification model over the policy's vocabulary (e.g. runtime::classifier_on_backbone), the
  // user's reward, instead of --reward; value: the user's prefix value model (a one-label head), instead of --value.
  const runtime::Model* reward_classifier = nullptr;
  // correct: the corrector adapter on the policy and whether it was trained with objectives, instead of --corrector.
  const runtime::LoraAdapter* corrector = nullptr;
  bool corrector_objectives = false;
  // ric: the adapter, its labels and each label's training-score quantiles {p10, p50, p90}, instead of --ric.
  const runtime::LoraAdapter* ric_adapter = nullptr;
  std::vector<std::string> ric_labels;
  std::vector<std::vector<double>> ric_quantiles;
  // best_of_n, cd_block: the user's reward of responses (texts) to a prompt (its text), instead of --reward.
  std::function<std::vector<double>(const std::string& prompt, const std::vector<std::string>& responses)> reward;
};

// What a strategy decodes with. model and tokenizer (may be null) are borrowed; adapter: a LoRA adapter directory
// attached to the policy ("" none); profile: the user's, or null (a request may bring its own, see StrategyRequest).
struct StrategySetup {
  const runtime::Model* model = nullptr;
  std::filesystem::path model_dir;
  const runtime::Tokenizer* tokenizer = nullptr;
  std::filesystem::path adapter;
  StrategyOptions options;
  const Personalization* profile = nullptr;
  StrategyInputs inputs;
};

// One request: the prompt's ids, and its text when it came as text (contrast puts its context before the text), the
// generation options and the number of outputs. profile: the user this request is for when one strategy serves many
// users (a server's batch, the bench), read instead of setup.profile by the strategies whose personalization is the
// profile's weights, statement or pairs (prompt, fusion, steer, contrast, correct, ric); the others refuse it
// (kInvalidArgument), their user is fixed when they are made.
struct StrategyRequest {
  std::vector<int64_t> prompt;
  std::optional<std::string> prompt_text;
  runtime::GenerateOptions options;
  int64_t n = 1;
  const Personalization* profile = nullptr;
};

// The work of a strategy's last generate call: tokens sampled (candidates it discarded included) and forward passes
// (a batched pass counts once; a strategy that runs several models per token counts each model).
struct StrategyCost {
  int64_t tokens = 0;
  int64_t passes = 0;
};

// A request's prompt given as text: encoded with special tokens, or (chat not null) wrapped as a user message after an
// optional system message, rendered with that chat template (runtime::ChatTemplate::from_model_dir finds a model's)
// and encoded without adding special tokens again; no text: the tokenizer's beginning-of-text token(s). Throws
// kInvalidArgument for an empty text, chat without text, no beginning-of-text token, or a chat template that rejects
// the conversation; kUnsupported for a template that uses Jinja outside palign's subset (runtime/chat_template.h).
std::vector<int64_t> encode_prompt(const runtime::Tokenizer& tokenizer, const std::optional<std::string>& text,
                                   const runtime::ChatTemplate* chat = nullptr, const std::string& system = "");

class Strategy {
 public:
  virtual ~Strategy() = default;
  // n outputs. Output i is the output of the same request with n = 1 and sampling seed sample_seed(seed, i).
  virtual std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) = 0;
  // One output per request (each with n = 1): output i is generate(requests[i])'s. Strategies that can decode
  // several requests in one batched pass (sample, prompt, steer: each row its own prompt, seed, weights) override it
  // for requests that differ only in prompt, seed and profile; the default decodes them one after another. notes(),
  // output_rewards() and cost() then cover the whole batch; built_prompt_tokens() the last request. Throws
  // kInvalidArgument for a request with n != 1.
  virtual std::vector<runtime::GenerateResult> generate_batch(std::span<const StrategyRequest> requests);
  virtual uint64_t sample_seed(uint64_t seed, int64_t i) const { return seed + static_cast<uint64_t>(i); }
  // What the strategy left out or changed without failing (retrieved examples that did not fit, history of other
  // users, an unknown user), for the caller to show; setup's notes first, then the last generate call's.
  const std::vector<std::string>& notes() const { return notes_; }
  // The length of the prompt the last generate call actually decoded from, when the strategy built one of its own
  // (prompt: statement and liked responses before it; contrast: the preference prompt before it); -1 otherwise.
  int64_t built_prompt_tokens() const { return built_prompt_tokens_; }
  // The reward of each output of the last generate call, as the strategy scored it to choose (best_of_n, cd_block:
  // the reward, or the profile's weighted sum of its labels; args: r of the prompt and the whole output, the score
  // of its last step); empty for a strategy that ranks by no reward.
  const std::vector<double>& output_rewards() const { return output_rewards_; }
  const StrategyCost& cost() const { return cost_; }

 protected:
  std::vector<std::string> notes_;
  int64_t built_prompt_tokens_ = -1;
  std::vector<double> output_rewards_;
  StrategyCost cost_;
};

struct StrategyInfo {
  const char* name;
  const char* summary;
  // Loads what the strategy needs (models, rewards, vectors) and checks its options. Throws kInvalidArgument for
  // missing or bad options naming the flag, kNotFound for missing files.
  std::unique_ptr<Strategy> (*make)(const StrategySetup& setup);
};

// The registry, in the order --help lists it.
std::span<const StrategyInfo> strategies();
// The named strategy's entry. Throws kInvalidArgument listing the names.
const StrategyInfo& find_strategy(const std::string& name);
// Throws kInvalidArgument, naming the field and its strategies, when an option given (given: the fields set, by name)
// does not belong to the named strategy.
void check_options_belong(const std::string& name, const std::vector<std::string>& given);
// find_strategy(name).make(setup), after check_options_belong(name, given).
std::unique_ptr<Strategy> make_strategy(const std::string& name, const StrategySetup& setup,
                                        const std::vector<std::string>& given = {});

}  // namespace palign::decoding
