// palign generate: flags in, one decoding strategy (palign/decoding/strategy.h) out, personalized by --user-profile
// DIR, by a stored user (--store DB --user U) or by the strategy's own flags.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/users/profile.h"
#include "palign/users/store.h"
#include "user_common.h"

namespace palign::cli {

namespace fs = std::filesystem;

namespace {

struct GenerateFlags {
  std::string model, adapter, strategy = "sample", user_profile, store;
  decoding::StrategyOptions options;
  std::vector<std::pair<const CLI::Option*, std::string>> fields;  // the strategy options' flags and names
  std::optional<std::string> prompt, prompt_ids;
  std::string system, chat_template;
  bool chat = false, json = false, ignore_eos = false;
  int64_t n = 1;
  runtime::GenerateOptions generate;
};

int run_generate(const GenerateFlags& f) {
  const fs::path dir = resolve_model_dir(f.model);
  const auto model = runtime::Model::load(dir);
  PALIGN_CHECK(model->config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[cli.generate] ",
               model->config().architecture, " is a reward/classification model; generate needs a causal LM");
  std::optional<runtime::Tokenizer> tokenizer;
  if (fs::exists(dir / "tokenizer.json")) tokenizer.emplace(runtime::Tokenizer::from_dir(dir));
  decoding::StrategyRequest request;
  request.options = f.generate;
  request.n = f.n;
  if (f.prompt_ids) {
    PALIGN_CHECK(!f.chat, ErrorCode::kInvalidArgument, "[cli.generate] --chat needs --prompt text, not --prompt-ids");
    request.prompt = parse_ids(*f.prompt_ids, "--prompt-ids");
  } else {
    PALIGN_CHECK(tokenizer.has_value(), ErrorCode::kNotFound, "[cli.generate] ", dir.string(),
                 " has no tokenizer.json; pass --prompt-ids instead of --prompt");
    std::optional<runtime::ChatTemplate> chat;
    if (f.chat) chat.emplace(runtime::ChatTemplate::from_model_dir(dir, f.chat_template));
    request.prompt = decoding::encode_prompt(*tokenizer, f.prompt, chat ? &*chat : nullptr, f.system);
    request.prompt_text = f.prompt.value_or("");
  }
  if (!f.ignore_eos) request.options.stop_ids = default_stop_ids(dir, *model, tokenizer ? &*tokenizer : nullptr);
  std::optional<decoding::Personalization> profile;
  if (!f.user_profile.empty()) {
    const auto p = users::UserProfile::load(f.user_profile);
    profile = decoding::Personalization{p.user_id, p.weights, p.statement, p.reward, p.history, {}};
  }
  std::vector<std::string> given;
  for (const auto& [option, name] : f.fields)
    if (option->count() > 0) given.push_back(name);
  decoding::StrategyOptions strategy_options = f.options;
  if (!f.store.empty()) {
    // --user names the store's user: their posterior personalizes the strategy (it is not a reward's own user).
    PALIGN_CHECK(!strategy_options.user.empty(), ErrorCode::kInvalidArgument,
                 "[cli.generate] --store needs --user, the user whose profile personalizes the output");
    const auto store = users::ProfileStore::open(f.store, {.create = false, .read_only = true});
    profile = personalization_of(*store, strategy_options.user, strategy_options.reward);
    strategy_options.user.clear();
    given.erase(std::remove(given.begin(), given.end(), std::string("user")), given.end());
  }
  const decoding::StrategySetup setup{
      model.get(), dir, tokenizer ? &*tokenizer : nullptr, f.adapter, strategy_options, profile ? &*profile : nullptr,
      {}};
  const auto strategy = decoding::make_strategy(f.strategy, setup, given);
  const auto results = strategy->generate(request);
  for (const auto& note : strategy->notes()) std::cerr << "note: " << note << "\n";
  const int64_t built = strategy->built_prompt_tokens(),
                prompt_tokens = built >= 0 ? built : std::ssize(request.prompt);
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].finish_reason == "length" && std::ssize(results[i].ids) < f.generate.max_new_tokens)
      std::cerr << "note: sample " << i << " stopped at the model's context of " << model->config().max_position
                << " tokens (" << prompt_tokens << " prompt + " << results[i].ids.size()
                << " new), before --max-new-tokens " << f.generate.max_new_tokens << "\n";
  // What the strategy was asked (its options given on the command line) and did (the prompt it decoded from).
  nlohmann::json options = nlohmann::json::object();
  decoding::StrategyOptions fields = f.options;
  fields.visit_fields([&](const char* name, const auto& value, const char*, const char*) {
    if (std::find(given.begin(), given.end(), name) != given.end()) options[name] = value;
  });
  const auto& rewards = strategy->output_rewards();
  for (const auto& r : results) {
    if (f.json) {
      nlohmann::json j{{"output_ids", r.ids},
                       {"text", r.text},
                       {"finish_reason", r.finish_reason},
                       {"prompt_tokens", prompt_tokens},
                       {"strategy", f.strategy},
                       {"options", options}};
      if (!f.user_profile.empty()) j["user_profile"] = f.user_profile;
      if (profile && !f.store.empty()) j["profile_user"] = profile->user_id;
      if (!rewards.empty()) j["reward"] = rewards[static_cast<size_t>(&r - results.data())];
      print_json_line(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      std::cout << r.text << std::endl;
      if (results.size() > 1 && &r != &results.back()) std::cout << "---" << std::endl;  // between samples
    }
  }
  return 0;
}

}  // namespace

Command add_generate(CLI::App& root) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = root.add_subcommand("generate", "Generate text from a prompt");
  app->add_option("--model", f->model, "Hugging Face model directory (default: the shipped model)");
  app->add_option("--adapter", f->adapter, "A LoRA adapter (PEFT directory) attached to the model");
  auto* p = app->add_option_function<std::string>(
      "--prompt", [f](const std::string& v) { f->prompt = v; }, "Prompt text (none: start a fresh text)");
  app->add_option_function<std::string>(
         "--prompt-ids", [f](const std::string& v) { f->prompt_ids = v; }, "Prompt as comma-separated token ids")
      ->excludes(p);
  runtime::GenerateOptions& g = f->generate;
  g.max_new_tokens = 64;
  runtime::SamplingOptions& s = g.sampling;
  app->add_option("--max-new-tokens", g.max_new_tokens, "Most tokens to generate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  auto* greedy = app->add_flag("--greedy", s.greedy, "Argmax decoding");
  for (auto* o : {app->add_option("--temperature", s.temperature, "Sampling temperature (> 0)"),
                  app->add_option("--top-p", s.top_p, "Nucleus sampling mass in (0, 1]"),
                  app->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0 = all)"),
                  app->add_option("--min-p", s.min_p, "Drop tokens below min-p x the top probability")})
    greedy->excludes(o->capture_default_str());
  app->add_option("--repetition-penalty", s.repetition_penalty, "Penalty > 1 discourages repeats")
      ->capture_default_str();
  app->add_option("--seed", s.seed, "Random seed (sample i uses seed + i)")->capture_default_str();
  app->add_option("-n,--n", f->n, "Number of samples, generated in one batch")->capture_default_str();
  app->add_option("--stop", g.stop_strings, "Stop string (repeatable)");
  app->add_flag("--ignore-eos", f->ignore_eos, "Do not stop at end-of-sequence tokens");
  auto* chat = app->add_flag("--chat", f->chat, "Wrap the prompt as a user message with the model's chat template");
  app->add_option("--system", f->system, "System message for --chat");
  app->add_option("--chat-template", f->chat_template,
                  "Jinja chat template file for --chat, for a model that ships none or to override its own")
      ->needs(chat);
  app->add_flag("--json", f->json, "Print one JSON line per sample: {\"output_ids\", \"text\", ...}");
  std::vector<std::string> names;
  std::string listed;
  for (const auto& info : decoding::strategies()) {
    names.push_back(info.name);
    listed += (listed.empty() ? "" : "\n") + std::string(info.name) + ": " + info.summary;
  }
  app->add_option("--strategy", f->strategy, "Decoding strategy, one of\n" + listed)
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  app->add_option("--user-profile", f->user_profile,
                  "A user profile directory (profile.json): the weights, statement, reward and history the strategy "
                  "personalizes with");
  auto* store = app->add_option("--store", f->store,
                                "A profile store (palign user): --user's current posterior personalizes the strategy "
                                "(weights, statement, past choices)");
  f->options.visit_fields([&](const char* name, auto& field, const char* help, const char*) {
    f->fields.emplace_back(app->add_option("--" + std::string(name), field, help)->capture_default_str(), name);
  });
  store->excludes(app->get_option("--user-profile"));
  return {app, [f] { return run_generate(*f); }};
}

}  // namespace palign::cli
