// palign generate: text generation with the plain sampler or a decoding-time personalization strategy
// (palign/decoding), personalized by --user-profile DIR or by the strategy's own flags.
#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/users/profile.h"
#include "palign/decoding/prompting.h"
#include "palign/decoding/rerank.h"
#include "palign/decoding/steering.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/runtime/user_tokens.h"
#include "palign/training/reward_trainer.h"

namespace palign::cli {

namespace fs = std::filesystem;
using namespace palign::runtime;

namespace {
struct GenerateFlags {
  std::string model;
  std::string adapter;
  // Decoding strategies (palign/decoding/strategies.h).
  std::string strategy = "sample";
  std::string models, weights, expert, antiexpert, reward_model;
  std::string context, context_ids;
  std::string reward, user, user_pairs;
  std::string user_profile;
  std::string vectors;                // steer
  std::string statement, history;     // prompt
  int64_t retrieve = 3;               // prompt
  int64_t best_of = 4;
  int64_t cd_k = 4, cd_block = 8;
  double lambda = 1.0;
  double alpha = 1.0, args_w = 1.0;
  int64_t args_k = 10;
  std::vector<std::pair<const CLI::Option*, std::string>> strategy_flags;  // flag -> the strategy it belongs to
  std::string prompt;
  bool prompt_given = false;
  std::string prompt_ids;
  bool prompt_ids_given = false;
  std::string system;
  int64_t max_new_tokens = 64;
  bool greedy = false;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int64_t top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  int64_t n = 1;
  bool chat = false;
  bool json = false;
  bool ignore_eos = false;
  std::vector<std::string> stop;
};

double parse_weight(const std::string& item) {
  try {
    size_t used = 0;
    const double w = std::stod(item, &used);
    if (used == item.size()) return w;
  } catch (const std::exception&) {
  }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[cli.generate] --weights: '", item,
               "' is not a number; give comma-separated numbers (--weights 0.7,0.3) or name=number pairs "
               "(--weights humour=0.7,length=-0.2)");
}

// One weight per name: --weights as numbers in the names' order or as name=number pairs, else the user profile's
// weights of those names (missing_zero: a dimension the profile does not weigh gets 0). what: "models in --models",
// "vectors in FILE".
std::vector<double> resolve_weights(const std::string& text, const std::vector<std::string>& names,
                                    const users::UserProfile* profile, const std::string& what,
                                    bool missing_zero = false) {
  if (text.empty()) {
    PALIGN_CHECK(profile, ErrorCode::kInvalidArgument, "[cli.generate] give --weights (one per ", what,
                 ") or --user-profile DIR");
    return profile->weights_for(names, missing_zero);
  }
  const auto items = split_list(text);
  const bool named = std::any_of(items.begin(), items.end(), [](const auto& i) { return i.find('=') != i.npos; });
  if (!named) {
    std::vector<double> out;
    for (const auto& item : items) out.push_back(parse_weight(item));
    PALIGN_CHECK(out.size() == names.size(), ErrorCode::kInvalidArgument, "[cli.generate] --weights has ", out.size(),
                 " numbers for ", names.size(), " ", what, "; give one weight per ", what.substr(0, what.find(' ') - 1));
    return out;
  }
  std::map<std::string, double> by_name;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    PALIGN_CHECK(eq != item.npos, ErrorCode::kInvalidArgument, "[cli.generate] --weights mixes numbers and name=number "
                 "pairs ('", item, "'); use one form");
    const std::string name = item.substr(0, eq);
    PALIGN_CHECK(std::find(names.begin(), names.end(), name) != names.end(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --weights names '", name, "', which is none of the ", what);
    by_name[name] = parse_weight(item.substr(eq + 1));
  }
  std::vector<double> out;
  for (const auto& n : names) out.push_back(by_name.count(n) ? by_name[n] : 0.0);  // unnamed: weight 0
  return out;
}

std::string file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// fusion / proxy / contrast / args: one sample at a time (seed + i), each model with its own cache.
std::vector<GenerateResult> run_strategy(const GenerateFlags& f, const Model& model, const fs::path& dir,
                                         const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                                         const Tokenizer* tokenizer, const users::UserProfile* profile) {
  std::vector<std::unique_ptr<Model>> loaded;
  auto load = [&](const std::string& path) -> const Model& {
    if (fs::weakly_canonical(path) == fs::weakly_canonical(dir)) return model;
    loaded.push_back(Model::load(path));
    return *loaded.back();
  };
  std::function<std::unique_ptr<decoding::NextTokenScorer>()> make;
  std::vector<const Model*> fused;
  std::vector<double> weights;
  std::vector<int64_t> with_context;
  const std::vector<int64_t>* decode_prompt = &prompt;
  if (f.strategy == "fusion") {
    const auto paths = split_list(f.models);
    PALIGN_CHECK(!paths.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --strategy fusion needs --models A,B[,C...] and --weights a,b[,c...]");
    std::vector<std::string> names;  // a model's dimension is its directory's name
    for (const auto& p : paths) names.push_back(fs::path(p).lexically_normal().filename().string());
    for (auto& n : names)
      if (n.empty()) n = "?";
    weights = resolve_weights(f.weights, names, profile, "models in --models");
    for (const auto& p : paths) fused.push_back(&load(p));
    make = [&] { return decoding::make_fusion(fused, weights, prompt); };
  } else if (f.strategy == "contrast") {
    const std::string context = !f.context.empty() ? f.context : profile ? profile->statement : "";
    PALIGN_CHECK(!context.empty() || !f.context_ids.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --strategy contrast needs --context TEXT (or --context-ids with --prompt-ids, or a "
                 "--user-profile with a statement): the user's preference prompt");
    if (!f.context_ids.empty()) {
      PALIGN_CHECK(f.prompt_ids_given, ErrorCode::kInvalidArgument,
                   "[cli.generate] --context-ids goes with --prompt-ids; with --prompt use --context TEXT");
      with_context = parse_ids(f.context_ids, "--context-ids");
      with_context.insert(with_context.end(), prompt.begin(), prompt.end());
    } else if (f.prompt_ids_given) {
      // The preference text as a text of its own before the prompt's ids.
      PALIGN_CHECK(tokenizer, ErrorCode::kInvalidArgument,
                   "[cli.generate] the model has no tokenizer.json to encode the preference text; use --context-ids");
      with_context = decoding::personalized_prompt(*tokenizer, context, {}, prompt, model.config().max_position);
    } else {
      PALIGN_CHECK(tokenizer, ErrorCode::kInvalidArgument, "[cli.generate] --context TEXT needs a tokenizer.json");
      const auto ids = tokenizer->encode(context + f.prompt, /*add_special=*/true);
      with_context.assign(ids.begin(), ids.end());
    }
    make = [&] { return decoding::make_contrast(model, with_context, prompt, f.lambda); };
    decode_prompt = &with_context;
  } else if (f.strategy == "proxy") {
    PALIGN_CHECK(!f.expert.empty() && !f.antiexpert.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --strategy proxy needs --expert DIR and --antiexpert DIR (and --alpha A)");
    const Model& expert = load(f.expert);
    const Model& anti = load(f.antiexpert);
    make = [&] { return decoding::make_proxy(model, expert, anti, f.alpha, prompt); };
  } else {
    PALIGN_CHECK(!f.reward_model.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --strategy args needs --reward-model DIR (and --args-k K --args-w W)");
    PALIGN_CHECK(f.args_k >= 1, ErrorCode::kInvalidArgument, "[cli.generate] --args-k must be at least 1, got ",
                 f.args_k);
    const fs::path rm_dir = f.reward_model;
    if (fs::exists(dir / "tokenizer.json") && fs::exists(rm_dir / "tokenizer.json"))
      PALIGN_CHECK(file_text(dir / "tokenizer.json") == file_text(rm_dir / "tokenizer.json"),
                   ErrorCode::kInvalidArgument, "[cli.generate] the reward model's tokenizer (", rm_dir.string(),
                   ") differs from the policy's; ARGS scores the policy's tokens, so both must share one tokenizer");
    const Model* reward = &load(f.reward_model);
    if (profile && reward->config().num_labels > 1) {
      // A multi-objective reward scored as the user's weighted sum of its labels.
      loaded.push_back(decoding::weighted_reward_model(*reward, profile->weights_for(reward->config().id2label, true)));
      reward = loaded.back().get();
    }
    make = [&] { return decoding::make_args(model, *reward, f.args_k, f.args_w, prompt); };
  }
  std::vector<GenerateResult> results;
  for (int64_t i = 0; i < f.n; ++i) {
    GenerateOptions o = opts;
    o.sampling.seed = opts.sampling.seed + static_cast<uint64_t>(i);
    auto scorer = make();
    results.push_back(decoding::decode(*scorer, *decode_prompt, o, model.config().max_position, tokenizer));
  }
  return results;
}

// best_of_n: N samples in one batch (shared prompt prefix), reranked by a reward model — any `palign train reward`
// directory, personalized for --user / --user-pairs (or the --user-profile's user, reward and history) — once per
// requested output (seed + i·N·1000). cd_block: K continuations of B tokens per block, the best by the reward kept.
std::vector<GenerateResult> run_rerank(const GenerateFlags& f, const Model& model, const std::vector<int64_t>& prompt,
                                       const GenerateOptions& opts, const Tokenizer* tokenizer,
                                       const users::UserProfile* profile) {
  const bool block = f.strategy == "cd_block";
  const fs::path reward_dir = !f.reward.empty() ? fs::path(f.reward) : profile ? profile->reward : fs::path();
  PALIGN_CHECK(!reward_dir.empty(), ErrorCode::kInvalidArgument, "[cli.generate] --strategy ", f.strategy,
               " needs --reward DIR (from palign train reward) or a --user-profile with a reward");
  PALIGN_CHECK(tokenizer, ErrorCode::kInvalidArgument, "[cli.generate] ", f.strategy,
               " scores text, but the model directory has no tokenizer.json");
  auto reward = training::RewardModel::load(reward_dir);
  std::string user = f.user;
  fs::path pairs_file = f.user_pairs;
  if (profile && reward->personalized() && user.empty() && pairs_file.empty()) {
    const auto known = reward->users();
    if (std::find(known.begin(), known.end(), profile->user_id) != known.end())
      user = profile->user_id;
    else
      pairs_file = profile->history;  // a user the reward has not seen brings their pairs
  }
  std::vector<scoring::PreferenceRecord> pairs;
  if (!pairs_file.empty()) pairs = scoring::read_preference_jsonl(pairs_file);
  PALIGN_CHECK(reward->personalized() || (f.user.empty() && f.user_pairs.empty()), ErrorCode::kInvalidArgument,
               "[cli.generate] ", reward_dir.string(), " is the same for every user; drop --user/--user-pairs");
  const std::string prompt_text =
      tokenizer->decode(std::vector<int32_t>(prompt.begin(), prompt.end()), /*skip_special=*/true);
  const decoding::ContinuationScorer score = [&](const std::vector<std::vector<int64_t>>& continuations) {
    std::vector<double> out;
    for (const auto& ids : continuations)
      out.push_back(reward->score(
          prompt_text, tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special=*/true), user,
          pairs)[0]);
    return out;
  };
  const int64_t k = block ? f.cd_k : f.best_of;
  PALIGN_CHECK(k >= 1, ErrorCode::kInvalidArgument, "[cli.generate] ", block ? "--cd-k" : "--best-of",
               " must be at least 1, got ", k);
  PALIGN_CHECK(!block || f.cd_block >= 1, ErrorCode::kInvalidArgument,
               "[cli.generate] --cd-block must be at least 1, got ", f.cd_block);
  std::vector<GenerateResult> out;
  for (int64_t i = 0; i < f.n; ++i) {
    GenerateOptions o = opts;
    o.sampling.seed = opts.sampling.seed + static_cast<uint64_t>(i * k * 1000);
    out.push_back(block ? decoding::cd_block(model, tokenizer, prompt, o, k, f.cd_block, score)
                        : decoding::best_of_n(model, tokenizer, prompt, o, k, score));
  }
  return out;
}

// prompt: the preference statement and the user's liked responses most similar to the prompt before it.
// steer: Σ_k w_k · λ · v_k added to the residual stream. Both are the batched plain sampler over a changed input or
// forward, so they keep --adapter and -n.
std::vector<GenerateResult> run_context_or_steer(const GenerateFlags& f, const Model& model,
                                                 const std::vector<int64_t>& prompt, GenerateOptions opts,
                                                 const Tokenizer* tokenizer, const users::UserProfile* profile) {
  if (f.strategy == "steer") {
    const fs::path file = f.vectors;
    PALIGN_CHECK(!file.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --strategy steer needs --vectors FILE (from palign train steer)");
    const auto vectors = decoding::load_steering_vectors(file, model.config());
    std::vector<std::string> names;
    for (const auto& v : vectors) names.push_back(v.name);
    const auto weights = resolve_weights(f.weights, names, profile, "vectors in " + file.string(), true);
    opts.residual_hook = decoding::steering_hook(vectors, weights, f.lambda);
    return generate(model, tokenizer, prompt, opts, f.n);
  }
  PALIGN_CHECK(tokenizer, ErrorCode::kInvalidArgument,
               "[cli.generate] --strategy prompt encodes text, but the model directory has no tokenizer.json");
  const std::string statement = !f.statement.empty() ? f.statement : profile ? profile->statement : "";
  const fs::path history = !f.history.empty() ? fs::path(f.history) : profile ? profile->history : fs::path();
  PALIGN_CHECK(!statement.empty() || !history.empty(), ErrorCode::kInvalidArgument,
               "[cli.generate] --strategy prompt needs --statement TEXT, --history PAIRS.jsonl or a --user-profile "
               "with either");
  PALIGN_CHECK(f.retrieve >= 0, ErrorCode::kInvalidArgument, "[cli.generate] --retrieve must be >= 0, got ",
               f.retrieve);
  std::vector<std::string> liked;
  if (!history.empty()) {
    const std::string who = profile ? profile->user_id : "";
    for (const auto& r : scoring::read_preference_jsonl(history))
      if (who.empty() || r.user_id.empty() || r.user_id == who) {
        const std::string doc = r.prompt + r.chosen;
        if (std::find(liked.begin(), liked.end(), doc) == liked.end()) liked.push_back(doc);
      }
  }
  const std::string prompt_text =
      tokenizer->decode(std::vector<int32_t>(prompt.begin(), prompt.end()), /*skip_special=*/true);
  std::vector<std::string> ranked;
  for (size_t i : decoding::rank_by_overlap(prompt_text, liked)) ranked.push_back(liked[i]);
  const int64_t room = model.config().max_position - std::min<int64_t>(opts.max_new_tokens, model.config().max_position - 1);
  const auto context =
      decoding::personalized_prompt(*tokenizer, statement, ranked, prompt, room, static_cast<size_t>(f.retrieve));
  return generate(model, tokenizer, context, opts, f.n);
}

int run_generate(const GenerateFlags& f, const CLI::App& app) {
  for (const auto& [option, strategy] : f.strategy_flags)
    PALIGN_CHECK(option->count() == 0 || ("|" + strategy + "|").find("|" + f.strategy + "|") != std::string::npos,
                 ErrorCode::kInvalidArgument, "[cli.generate] ", option->get_name(), " belongs to --strategy ",
                 strategy, "; add --strategy ", strategy);
  const fs::path dir = resolve_model_dir(f.model);
  auto model = Model::load(dir);
  PALIGN_CHECK(model->config().head == HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[cli.generate] ",
               model->config().architecture, " is a reward/classification model; generate needs a causal LM");
  std::optional<Tokenizer> tokenizer;
  if (fs::exists(dir / "tokenizer.json")) tokenizer.emplace(Tokenizer::from_dir(dir));
  std::vector<int64_t> prompt;
  if (f.prompt_ids_given) {
    PALIGN_CHECK(!f.chat, ErrorCode::kInvalidArgument, "[cli.generate] --chat needs --prompt text, not --prompt-ids");
    prompt = parse_ids(f.prompt_ids, "--prompt-ids");
  } else {
    PALIGN_CHECK(tokenizer.has_value(), ErrorCode::kNotFound, "[cli.generate] ", dir.string(),
                 " has no tokenizer.json; pass --prompt-ids instead of --prompt");
    PALIGN_CHECK(!f.prompt_given || !f.prompt.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] the prompt is empty; give --prompt TEXT or --prompt-ids 1,2,3");
    std::vector<int32_t> ids;
    if (!f.prompt_given) {
      // No prompt: start a fresh text from the tokenizer's beginning-of-text token(s).
      PALIGN_CHECK(!f.chat, ErrorCode::kInvalidArgument, "[cli.generate] --chat needs --prompt");
      ids = tokenizer->encode("", /*add_special=*/true);
      if (ids.empty() && tokenizer->bos_id()) ids.push_back(*tokenizer->bos_id());
      if (ids.empty() && tokenizer->eos_id()) ids.push_back(*tokenizer->eos_id());
      PALIGN_CHECK(!ids.empty(), ErrorCode::kInvalidArgument, "[cli.generate] ", dir.string(),
                   "'s tokenizer has no beginning-of-text token; give --prompt TEXT");
    } else if (f.chat) {
      PALIGN_CHECK(!tokenizer->chat_template_source().empty(), ErrorCode::kUnsupported, "[cli.generate] ", dir.string(),
                   " has no chat_template in tokenizer_config.json; drop --chat");
      auto tmpl = ChatTemplate::detect(tokenizer->chat_template_source());
      std::vector<ChatMessage> messages;
      if (!f.system.empty()) messages.push_back({"system", f.system});
      messages.push_back({"user", f.prompt});
      ids = tokenizer->encode(tmpl.apply(messages, /*add_generation_prompt=*/true), /*add_special=*/false);
    } else {
      ids = tokenizer->encode(f.prompt, /*add_special=*/true);
    }
    prompt.assign(ids.begin(), ids.end());
  }
  GenerateOptions opts;
  opts.max_new_tokens = f.max_new_tokens;
  opts.sampling = SamplingOptions{.greedy = f.greedy,
                                  .temperature = f.temperature,
                                  .top_k = f.top_k,
                                  .top_p = f.top_p,
                                  .min_p = f.min_p,
                                  .repetition_penalty = f.repetition_penalty,
                                  .seed = f.seed};
  if (!f.ignore_eos) opts.stop_ids = default_stop_ids(dir, *model, tokenizer ? &*tokenizer : nullptr);
  opts.stop_strings = f.stop;
  std::optional<LoraAdapter> adapter;
  if (!f.adapter.empty()) adapter.emplace(LoraAdapter::load(f.adapter, model->config()));
  opts.linear_hook = adapter ? &*adapter : nullptr;
  // A user-conditioned (pdpo) adapter: the user's learned tokens go before the prompt.
  const size_t prompt_tokens = prompt.size();
  at::Tensor user_table;
  if (!f.adapter.empty() && fs::exists(fs::path(f.adapter) / runtime::kUserTokensFile)) {
    PALIGN_CHECK(f.strategy == "sample", ErrorCode::kInvalidArgument, "[cli.generate] ", f.adapter,
                 " is a user-conditioned (pdpo) adapter; it works with --strategy sample");
    const auto tokens = runtime::UserTokens::load(fs::path(f.adapter) / runtime::kUserTokensFile,
                                                   model->config().hidden_size);
    const int64_t slot = tokens.slot(f.user);
    if (!f.user.empty() && slot == 0)
      std::cerr << "note: user " << f.user << " is not one of the adapter's " << tokens.users.size()
                << " users; generating for the generic user\n";
    const auto prefix = tokens.prefix(slot, model->config().vocab_size);
    prompt.insert(prompt.begin(), prefix.begin(), prefix.end());
    user_table = tokens.table();
    opts.virtual_tokens = &user_table;
  } else {
    PALIGN_CHECK(f.user.empty() || f.strategy != "sample", ErrorCode::kInvalidArgument,
                 "[cli.generate] --user with --strategy sample needs a user-conditioned --adapter (palign train "
                 "policy --method pdpo)");
  }
  std::optional<users::UserProfile> profile;
  if (!f.user_profile.empty()) profile = users::UserProfile::load(f.user_profile);
  const users::UserProfile* prof = profile ? &*profile : nullptr;
  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  std::vector<GenerateResult> results;
  if (f.strategy == "sample") {
    results = generate(*model, tok, prompt, opts, f.n);
  } else if (f.strategy == "best_of_n" || f.strategy == "cd_block") {
    results = run_rerank(f, *model, prompt, opts, tok, prof);
  } else if (f.strategy == "prompt" || f.strategy == "steer") {
    results = run_context_or_steer(f, *model, prompt, opts, tok, prof);
  } else {
    PALIGN_CHECK(f.adapter.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --adapter works with --strategy sample, prompt, steer, best_of_n and cd_block");
    results = run_strategy(f, *model, dir, prompt, opts, tok, prof);
  }
  for (const auto& r : results) {
    if (f.json) {
      nlohmann::json j{{"output_ids", r.ids},
                       {"text", r.text},
                       {"finish_reason", r.finish_reason},
                       {"prompt_tokens", prompt_tokens}};
      print_json_line(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      std::cout << r.text << std::endl;
    }
  }
  return 0;
}
}  // namespace

Command add_generate(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* app = root.add_subcommand("generate", "Generate text from a prompt");
  app->add_option("--model", flags->model, "Hugging Face model directory (default: the shipped model)");
  app->add_option("--adapter", flags->adapter, "A LoRA adapter (PEFT directory) attached to the model");
  auto* p = app->add_option_function<std::string>(
      "--prompt", [flags](const std::string& v) { flags->prompt = v, flags->prompt_given = true; },
      "Prompt text (none: start a fresh text)");
  auto* pi = app->add_option_function<std::string>(
      "--prompt-ids", [flags](const std::string& v) { flags->prompt_ids = v, flags->prompt_ids_given = true; },
      "Prompt as comma-separated token ids");
  p->excludes(pi);
  app->add_option("--max-new-tokens", flags->max_new_tokens, "Most tokens to generate")->capture_default_str();
  auto* g = app->add_flag("--greedy", flags->greedy, "Argmax decoding");
  auto* t = app->add_option("--temperature", flags->temperature, "Sampling temperature (> 0)")->capture_default_str();
  auto* tp = app->add_option("--top-p", flags->top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str();
  auto* tk = app->add_option("--top-k", flags->top_k, "Keep the k most likely tokens (0 = all)")->capture_default_str();
  auto* mp =
      app->add_option("--min-p", flags->min_p, "Drop tokens below min-p x the top probability")->capture_default_str();
  for (auto* o : {t, tp, tk, mp}) g->excludes(o);
  app->add_option("--repetition-penalty", flags->repetition_penalty, "Penalty > 1 discourages repeats")
      ->capture_default_str();
  app->add_option("--seed", flags->seed, "Random seed (sample i uses seed + i)")->capture_default_str();
  app->add_option("-n,--n", flags->n, "Number of samples, generated in one batch")->capture_default_str();
  app->add_option("--stop", flags->stop, "Stop string (repeatable)");
  app->add_flag("--ignore-eos", flags->ignore_eos, "Do not stop at end-of-sequence tokens");
  app->add_flag("--chat", flags->chat, "Wrap the prompt as a user message with the model's chat template");
  app->add_option("--system", flags->system, "System message for --chat");
  app->add_flag("--json", flags->json, "Print one JSON line per sample: {\"output_ids\", \"text\", ...}");
  app->add_option("--strategy", flags->strategy,
                  "sample, prompt, best_of_n, cd_block, fusion, proxy, steer, contrast or args")
      ->check(CLI::IsMember(
          {"sample", "prompt", "best_of_n", "cd_block", "fusion", "proxy", "steer", "contrast", "args"}))
      ->capture_default_str();
  auto need = [&](CLI::Option* o, const char* s) { flags->strategy_flags.emplace_back(o, s); };  // s: "a" or "a|b"
  need(app->add_option("--user-profile", flags->user_profile,
                       "A user profile directory (profile.json): the weights, statement, reward and history the "
                       "strategy personalizes with"),
       "prompt|best_of_n|cd_block|fusion|steer|contrast|args");
  need(app->add_option("--models", flags->models, "fusion: comma-separated model directories sharing a vocabulary"),
       "fusion");
  need(app->add_option("--weights", flags->weights,
                       "fusion, steer: one weight per model / vector (any real numbers), or name=weight pairs"),
       "fusion|steer");
  need(app->add_option("--vectors", flags->vectors, "steer: a steering-vector file (palign train steer)"), "steer");
  need(app->add_option("--statement", flags->statement, "prompt: the user's preference statement"), "prompt");
  need(app->add_option("--history", flags->history, "prompt: the user's labelled pairs (JSONL); liked responses are "
                       "retrieved from them"),
       "prompt");
  need(app->add_option("--retrieve", flags->retrieve, "prompt: most liked responses put before the prompt")
           ->capture_default_str(),
       "prompt");
  need(app->add_option("--expert", flags->expert, "proxy: the expert model"), "proxy");
  need(app->add_option("--antiexpert", flags->antiexpert, "proxy: the anti-expert model"), "proxy");
  need(app->add_option("--alpha", flags->alpha, "proxy: base + alpha * (expert - antiexpert)"), "proxy");
  need(app->add_option("--context", flags->context, "contrast: the user's preference prompt, put before --prompt"),
       "contrast");
  need(app->add_option("--context-ids", flags->context_ids, "contrast: the preference prompt as token ids"),
       "contrast");
  need(app->add_option("--lambda", flags->lambda,
                       "contrast: with + lambda * (with - without); steer: the vectors' scale"),
       "contrast|steer");
  need(app->add_option("--best-of", flags->best_of, "best_of_n: samples per output, reranked by --reward"),
       "best_of_n");
  need(app->add_option("--reward", flags->reward, "best_of_n, cd_block: a reward directory (palign train reward)"),
       "best_of_n|cd_block");
  need(app->add_option("--user", flags->user,
                       "best_of_n, cd_block: a user the personalized reward has seen; sample with a pdpo --adapter: "
                       "the user whose learned tokens condition the policy (unknown: the generic user)"),
       "best_of_n|cd_block|sample");
  need(app->add_option("--user-pairs", flags->user_pairs, "best_of_n, cd_block: a new user's labelled pairs"),
       "best_of_n|cd_block");
  need(app->add_option("--cd-k", flags->cd_k, "cd_block: candidate continuations per block"), "cd_block");
  need(app->add_option("--cd-block", flags->cd_block, "cd_block: tokens per block"), "cd_block");
  need(app->add_option("--reward-model", flags->reward_model, "args: a sequence-classification reward model"), "args");
  need(app->add_option("--args-k", flags->args_k, "args: candidate tokens per step (top-k of the policy)"), "args");
  need(app->add_option("--args-w", flags->args_w, "args: reward weight w in log p + w * r"), "args");
  return {app, [flags, app] { return run_generate(*flags, *app); }};
}

}  // namespace palign::cli
