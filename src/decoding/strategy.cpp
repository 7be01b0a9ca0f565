// The strategy registry, the options' membership check, and what the strategies share (see strategy.h and
// strategy_internal.h).
#include "palign/decoding/strategy.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/tokenizer.h"
#include "palign/runtime/user_tokens.h"
#include "palign/scoring/reward_model.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace fs = std::filesystem;

// Each factory is defined in strategy_<name>.cpp.
std::unique_ptr<Strategy> make_sample_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_prompt_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_best_of_n_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_cd_block_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_fusion_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_proxy_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_steer_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_contrast_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_args_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_cards_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_value_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_correct_strategy(const StrategySetup& setup);
std::unique_ptr<Strategy> make_ric_strategy(const StrategySetup& setup);

namespace {

constexpr StrategyInfo kStrategies[] = {
    {"sample", "the plain sampler (with --adapter; a pdpo adapter's user tokens before the prompt)",
     make_sample_strategy},
    {"prompt", "the user's statement and liked responses before the prompt", make_prompt_strategy},
    {"best_of_n", "N samples reranked by a reward model", make_best_of_n_strategy},
    {"cd_block", "block-wise controlled decoding by a reward model", make_cd_block_strategy},
    {"fusion", "weighted sum of models' log-probabilities (MOD, GenARM)", make_fusion_strategy},
    {"proxy", "proxy-tuning: base + alpha * (expert - anti-expert)", make_proxy_strategy},
    {"steer", "steering vectors added to the residual stream", make_steer_strategy},
    {"contrast", "contrastive steering with the user's preference prompt", make_contrast_strategy},
    {"args", "ARGS: the policy's top-k tokens rescored by a reward model", make_args_strategy},
    {"cards", "CARDS: segments cut where the model's uncertainty rises, kept when the reward clears a threshold",
     make_cards_strategy},
    {"value", "value-guided decoding (CD-FUDGE, VAS): the policy's top-k tokens reweighted by exp(beta * V(prefix))",
     make_value_strategy},
    {"correct", "a draft rewritten by a learned corrector (Aligner; MetaAligner: toward the user's objectives)",
     make_correct_strategy},
    {"ric", "a Rewards-in-Context policy asked for the scores the user wants (DPA: along the user's direction)",
     make_ric_strategy},
};

// Which strategies read the profile (--user-profile).
constexpr const char* kProfileStrategies =
    "prompt|best_of_n|cd_block|fusion|steer|contrast|args|cards|value|correct|ric";

bool belongs(const std::string& name, const std::string& strategies) {
  return ("|" + strategies + "|").find("|" + name + "|") != std::string::npos;
}

}  // namespace

std::vector<double> Personalization::weights_for(const std::vector<std::string>& names, bool missing_zero) const {
  std::string known;
  for (const auto& [k, w] : weights) known += (known.empty() ? "" : ", ") + k;
  if (known.empty()) known = "none";
  std::vector<double> out;
  bool any = false;
  for (const auto& n : names) {
    const auto it = weights.find(n);
    PALIGN_CHECK(it != weights.end() || missing_zero, ErrorCode::kInvalidArgument,
                 "[decoding.profile] the profile of '", user_id, "' has no weight for '", n, "' (it has: ", known,
                 "); add it or pass --weights");
    any |= it != weights.end();
    out.push_back(it != weights.end() ? it->second : 0.0);
  }
  if (!names.empty())
    PALIGN_CHECK(any, ErrorCode::kInvalidArgument, "[decoding.profile] the profile of '", user_id, "' weighs none of ",
                 names.front(), names.size() > 1 ? ", ..." : "", " (it has: ", known,
                 "); add weights for them or pass --weights");
  return out;
}

std::vector<runtime::GenerateResult> Strategy::generate_batch(std::span<const StrategyRequest> requests) {
  for (const auto& r : requests)
    PALIGN_CHECK(r.n == 1, ErrorCode::kInvalidArgument, "[decoding.strategy] a batch's requests have n = 1, got ", r.n,
                 "; give each output its own request");
  std::vector<runtime::GenerateResult> out;
  std::vector<std::string> notes;
  std::vector<double> rewards;
  StrategyCost cost;
  for (const auto& r : requests) {
    auto one = generate(r);
    out.push_back(std::move(one.at(0)));
    for (const auto& n : notes_)
      if (std::find(notes.begin(), notes.end(), n) == notes.end()) notes.push_back(n);
    rewards.insert(rewards.end(), output_rewards_.begin(), output_rewards_.end());
    cost.tokens += cost_.tokens;
    cost.passes += cost_.passes;
  }
  notes_ = std::move(notes);
  output_rewards_ = std::move(rewards);
  cost_ = cost;
  return out;
}

std::span<const StrategyInfo> strategies() { return kStrategies; }

const StrategyInfo& find_strategy(const std::string& name) {
  std::string known;
  for (const auto& s : kStrategies) {
    if (name == s.name) return s;
    known += (known.empty() ? "" : ", ") + std::string(s.name);
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[decoding.strategy] unknown strategy '", name, "'; known: ", known);
}

void check_options_belong(const std::string& name, const std::vector<std::string>& given) {
  StrategyOptions probe;
  probe.visit_fields([&](const char* field, auto&, const char*, const char* owners) {
    const bool set = std::find(given.begin(), given.end(), field) != given.end();
    PALIGN_CHECK(!set || belongs(name, owners), ErrorCode::kInvalidArgument, "[decoding.strategy] --", field,
                 " belongs to --strategy ", owners, "; add --strategy ", owners);
  });
}

std::unique_ptr<Strategy> make_strategy(const std::string& name, const StrategySetup& setup,
                                        const std::vector<std::string>& given) {
  const StrategyInfo& info = find_strategy(name);
  check_options_belong(name, given);
  // A non-finite scale (--alpha inf, --lambda nan, --args-w nan) would decode garbage.
  StrategyOptions numbers = setup.options;
  numbers.visit_fields([](const char* field, auto& value, const char*, const char*) {
    if constexpr (std::is_floating_point_v<std::decay_t<decltype(value)>>)
      PALIGN_CHECK(std::isfinite(value), ErrorCode::kInvalidArgument, "[decoding.strategy] --", field,
                   " must be a finite number, got ", value);
  });
  PALIGN_CHECK(!setup.profile || belongs(name, kProfileStrategies), ErrorCode::kInvalidArgument,
               "[decoding.strategy] --user-profile belongs to --strategy ", kProfileStrategies, "; add --strategy ",
               kProfileStrategies);
  PALIGN_CHECK(setup.model, ErrorCode::kInvalidArgument, "[decoding.strategy] no model to decode with");
  return info.make(setup);
}

std::vector<int64_t> encode_prompt(const runtime::Tokenizer& tokenizer, const std::optional<std::string>& text,
                                   const runtime::ChatTemplate* chat, const std::string& system) {
  PALIGN_CHECK(!text || !text->empty(), ErrorCode::kInvalidArgument,
               "[decoding.prompt] the prompt is empty; give --prompt TEXT or --prompt-ids 1,2,3");
  std::vector<int32_t> ids;
  if (!text) {
    // No prompt: start a fresh text from the tokenizer's beginning-of-text token(s).
    PALIGN_CHECK(!chat, ErrorCode::kInvalidArgument, "[decoding.prompt] --chat needs --prompt");
    ids = tokenizer.encode("", /*add_special=*/true);
    if (ids.empty() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
    if (ids.empty() && tokenizer.eos_id()) ids.push_back(*tokenizer.eos_id());
    PALIGN_CHECK(!ids.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.prompt] the tokenizer has no beginning-of-text token; give --prompt TEXT");
  } else if (chat) {
    std::vector<runtime::ChatMessage> messages;
    if (!system.empty()) messages.push_back({"system", system});
    messages.push_back({"user", *text});
    ids = tokenizer.encode(chat->apply(messages, /*add_generation_prompt=*/true), /*add_special=*/false);
  } else {
    ids = tokenizer.encode(*text, /*add_special=*/true);
  }
  return {ids.begin(), ids.end()};
}

namespace detail {

std::optional<runtime::LoraAdapter> load_adapter(const StrategySetup& setup, const char* strategy,
                                                 bool allow_user_tokens) {
  if (setup.adapter.empty()) return std::nullopt;
  auto adapter = runtime::LoraAdapter::load(setup.adapter, setup.model->config());
  PALIGN_CHECK(allow_user_tokens || !fs::exists(setup.adapter / runtime::kUserTokensFile), ErrorCode::kInvalidArgument,
               "[decoding.", strategy, "] ", setup.adapter.string(),
               " is a user-conditioned (pdpo) adapter; it works with --strategy sample");
  return adapter;
}

void refuse_adapter(const StrategySetup& setup, const char* strategy, const char* instead) {
  PALIGN_CHECK(setup.adapter.empty(), ErrorCode::kInvalidArgument, "[decoding.", strategy, "] ", strategy,
               " decodes with its own models, not one --adapter; pass adapter directories as ", instead);
}

const runtime::Model& ModelSet::load(const fs::path& dir) {
  // Models and adapters the caller holds in memory come first, by name.
  if (const auto it = inputs_.models.find(dir.string()); it != inputs_.models.end()) {
    PALIGN_CHECK(it->second, ErrorCode::kInvalidArgument, "[decoding.models] the model '", it->first,
                 "' given in memory is null");
    return *it->second;
  }
  if (const auto it = inputs_.adapters.find(dir.string()); it != inputs_.adapters.end()) {
    if (!it->second) return policy_;
    const auto [merged, fresh] = by_name_.emplace(it->first, nullptr);
    if (fresh) merged->second = &keep(runtime::merge_lora(policy_, *it->second));
    return *merged->second;
  }
  const fs::path key = fs::weakly_canonical(dir);
  if (key == fs::weakly_canonical(policy_dir_)) return policy_;
  if (const auto it = by_dir_.find(key); it != by_dir_.end()) return *it->second;
  const runtime::Model* model = nullptr;
  if (fs::exists(dir / "config.json") || !fs::is_directory(dir)) {
    model = &keep(runtime::Model::load(dir));
  } else if (fs::exists(dir / "adapter_config.json")) {
    // A LoRA adapter (a `train policy` expert, one dimension of a `train reward --method arm` directory): merged into
    // the base it names when that directory exists, else into the policy.
    const nlohmann::json config = read_json_file(dir / "adapter_config.json", "decoding.models");
    const runtime::Model* base = &policy_;
    if (const auto named = config.find("base_model_name_or_path");
        named != config.end() && named->is_string() && fs::is_directory(named->get<std::string>()) &&
        fs::exists(fs::path(named->get<std::string>()) / "config.json"))
      base = &load(named->get<std::string>());
    PALIGN_CHECK(!fs::exists(dir / runtime::kUserTokensFile), ErrorCode::kInvalidArgument, "[decoding.models] ",
                 dir.string(), " is a user-conditioned (pdpo) adapter; use it as --adapter with --strategy sample");
    model = &keep(runtime::merge_lora(*base, runtime::LoraAdapter::load(dir, base->config())));
  } else {
    std::vector<std::string> dims;
    if (fs::exists(dir / scoring::kRewardManifest)) {
      const nlohmann::json m = read_json_file(dir / scoring::kRewardManifest, "decoding.models");
      if (m.is_object() && m.contains("dimensions") && m["dimensions"].is_array())
        for (const nlohmann::json& d : m["dimensions"])
          if (d.is_string()) dims.push_back(d.get<std::string>());
    }
    PALIGN_CHECK(dims.empty(), ErrorCode::kInvalidArgument, "[decoding.models] ", dir.string(),
                 " holds one adapter per dimension (", join_list(dims), "); name one, e.g. ", (dir / dims[0]).string());
    PALIGN_THROW(ErrorCode::kNotFound, "[decoding.models] ", dir.string(),
                 " is neither a model directory (config.json) nor a LoRA adapter (adapter_config.json)");
  }
  by_dir_.emplace(key, model);
  return *model;
}

const runtime::Model& ModelSet::policy(const StrategySetup& setup, const char* strategy) {
  if (setup.adapter.empty()) return policy_;
  if (adapted_ == nullptr) adapted_ = &keep(runtime::merge_lora(policy_, *load_adapter(setup, strategy)));
  return *adapted_;
}

runtime::Model& ModelSet::keep(std::unique_ptr<runtime::Model> model) {
  loaded_.push_back(std::move(model));
  return *loaded_.back();
}

RewardUser reward_user(const StrategySetup& setup, const scoring::RewardModel& reward, const std::string& reward_dir,
                       const char* strategy) {
  const StrategyOptions& o = setup.options;
  PALIGN_CHECK(reward.personalized() || (o.user.empty() && o.user_pairs.empty()), ErrorCode::kInvalidArgument,
               "[decoding.", strategy, "] ", reward_dir, " is the same for every user; drop --user/--user-pairs");
  RewardUser who{o.user, {}};
  fs::path pairs_file = o.user_pairs;
  if (setup.profile && reward.personalized() && who.user.empty() && pairs_file.empty()) {
    const auto known = reward.users();
    if (std::find(known.begin(), known.end(), setup.profile->user_id) != known.end())
      who.user = setup.profile->user_id;
    else
      pairs_file = setup.profile->history;  // a user the reward has not seen brings their pairs
  }
  if (!pairs_file.empty()) who.pairs = scoring::read_preference_jsonl(pairs_file);
  return who;
}

namespace {

double parse_weight(const std::string& item) {
  try {
    size_t used = 0;
    const double w = std::stod(item, &used);
    if (used == item.size() && std::isfinite(w)) return w;
  } catch (const std::exception&) {
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[decoding.weights] --weights: '", item,
               "' is not a finite number; give comma-separated numbers (--weights 0.7,0.3) or name=number pairs "
               "(--weights humour=0.7,length=-0.2)");
}

}  // namespace

std::vector<double> resolve_weights(const std::string& text, const std::vector<std::string>& names,
                                    const Personalization* profile, const std::string& what, bool missing_zero) {
  if (text.empty()) {
    PALIGN_CHECK(profile, ErrorCode::kInvalidArgument, "[decoding.weights] give --weights (one per ", what,
                 ") or --user-profile DIR");
    return profile->weights_for(names, missing_zero);
  }
  const auto items = split_list(text);
  const bool named = std::any_of(items.begin(), items.end(), [](const auto& i) { return i.find('=') != i.npos; });
  if (!named) {
    std::vector<double> out;
    for (const auto& item : items) out.push_back(parse_weight(item));
    PALIGN_CHECK(out.size() == names.size(), ErrorCode::kInvalidArgument, "[decoding.weights] --weights has ",
                 out.size(), " numbers for ", names.size(), " ", what, "; give one weight per ",
                 what.substr(0, what.find(' ') - 1));
    return out;
  }
  std::map<std::string, double> by_name;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    PALIGN_CHECK(eq != item.npos, ErrorCode::kInvalidArgument,
                 "[decoding.weights] --weights mixes numbers and name=number pairs ('", item, "'); use one form");
    const std::string name = item.substr(0, eq);
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string valid;
      for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[decoding.weights] --weights names '", name,
                   "', which is none of the ", what, " (they are: ", valid, ")");
    }
    by_name[name] = parse_weight(item.substr(eq + 1));
  }
  std::vector<double> out;
  for (const auto& n : names) out.push_back(by_name.count(n) ? by_name[n] : 0.0);  // unnamed: weight 0
  return out;
}

std::vector<runtime::GenerateResult> decode_each(const std::function<std::unique_ptr<NextTokenScorer>()>& make,
                                                 const std::vector<int64_t>& prompt, const StrategyRequest& request,
                                                 const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                                 int64_t passes_per_token, StrategyCost* cost) {
  std::vector<runtime::GenerateResult> results;
  *cost = {};
  for (int64_t i = 0; i < request.n; ++i) {
    runtime::GenerateOptions o = request.options;
    o.sampling.seed = request.options.sampling.seed + static_cast<uint64_t>(i);
    auto scorer = make();
    results.push_back(decode(*scorer, prompt, o, model.config().max_position, tokenizer));
    const auto tokens = static_cast<int64_t>(results.back().ids.size());
    cost->tokens += tokens;
    cost->passes += passes_per_token * tokens;
  }
  return results;
}

std::vector<runtime::GenerateResult> decode_args(const runtime::Model& policy, const runtime::Model& scorer, int64_t k,
                                                 double w, const StrategyRequest& request,
                                                 const runtime::Tokenizer* tokenizer, StrategyCost* cost,
                                                 std::vector<double>* rewards) {
  auto out = decode_each([&] { return make_args(policy, scorer, k, w, request.prompt); }, request.prompt, request,
                         policy, tokenizer, /*passes_per_token=*/2, cost);
  rewards->clear();
  for (const auto& r : out) {
    std::vector<int64_t> ids = request.prompt;
    ids.insert(ids.end(), r.ids.begin(), r.ids.end());
    rewards->push_back(scorer.score(ids)[0].item<double>());
  }
  return out;
}

void check_same_tokenizer(const fs::path& policy_dir, const fs::path& dir, const char* strategy, const char* what) {
  const auto text = [](const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  if (fs::exists(policy_dir / "tokenizer.json") && fs::exists(dir / "tokenizer.json"))
    PALIGN_CHECK(text(policy_dir / "tokenizer.json") == text(dir / "tokenizer.json"), ErrorCode::kInvalidArgument,
                 "[decoding.", strategy, "] ", what, "'s tokenizer (", dir.string(), ") differs from the policy's; ",
                 strategy, " scores the policy's tokens, so both must share one tokenizer");
}

const Personalization* request_profile(const StrategyRequest& request, const Personalization* fallback) {
  return request.profile ? request.profile : fallback;
}

void refuse_request_profile(const StrategyRequest& request, const char* strategy) {
  PALIGN_CHECK(!request.profile, ErrorCode::kInvalidArgument, "[decoding.", strategy, "] ", strategy,
               " reads its user when it is made (setup.profile), not per request; make one strategy per user");
}

bool batchable(std::span<const StrategyRequest> requests) {
  for (const auto& r : requests)
    PALIGN_CHECK(r.n == 1, ErrorCode::kInvalidArgument, "[decoding.strategy] a batch's requests have n = 1, got ", r.n,
                 "; give each output its own request");
  return std::all_of(requests.begin(), requests.end(),
                     [&](const StrategyRequest& r) { return r.options.equal_but_seed(requests[0].options); });
}

std::vector<runtime::GenerateResult> decode_rows(
    const runtime::Model& model, const runtime::Tokenizer* tokenizer, std::span<const StrategyRequest> requests,
    runtime::GenerateOptions options, const std::function<std::vector<int64_t>(const StrategyRequest&)>& prompt_of,
    StrategyCost* cost) {
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& r : requests) {
    prompts.push_back(prompt_of(r));
    options.row_seeds.push_back(r.options.sampling.seed);
  }
  auto out = runtime::generate_each(model, tokenizer, prompts, options);
  *cost = batch_cost(out);
  return out;
}

StrategyCost batch_cost(const std::vector<runtime::GenerateResult>& results) {
  StrategyCost cost;
  for (const auto& r : results) {
    cost.tokens += static_cast<int64_t>(r.ids.size());
    cost.passes = std::max<int64_t>(cost.passes, static_cast<int64_t>(r.ids.size()));
  }
  return cost;
}

}  // namespace detail

}  // namespace palign::decoding
