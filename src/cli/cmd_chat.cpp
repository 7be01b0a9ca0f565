// palign chat: a person at a terminal (or a script on stdin) teaches palign their preferences. Each prompt is answered
// by --candidates responses of the chosen strategy, personalized by the user's current posterior; two of them are
// shown — the best under the posterior mean and the alternative active elicitation picks (users::choose_pair with an
// anchor), or with --explore the pair it picks among all; the person picks 1 or 2 (or n for neither); the choice is
// stored durably and the posterior updated before the next prompt. /profile, /undo, /quit.
#include <unistd.h>

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/runtime/chat_template.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/reward_model.h"
#include "palign/users/online_model.h"
#include "palign/users/scorer.h"
#include "user_common.h"

namespace palign::cli {

namespace fs = std::filesystem;

namespace {

struct ChatFlags {
  std::string model, store, strategy = "sample", policy = "information", chat_template, system;
  int64_t candidates = 4, max_new_tokens = 48;
  uint64_t seed = 0;
  double temperature = 1.0;
  bool raw = false, explore = false;
  decoding::StrategyOptions options;
  std::vector<std::pair<const CLI::Option*, std::string>> fields;
};

void print_profile(const users::UserState& s) {
  const auto sd = s.posterior.sd();
  std::cout << "profile of " << s.user_id << " (version " << s.version << ", " << s.events << " events)\n";
  for (size_t k = 0; k < s.posterior.names.size(); ++k)
    std::cout << "  " << std::left << std::setw(14) << s.posterior.names[k] << std::right << std::showpos << std::fixed
              << std::setprecision(3) << s.posterior.mean[k] << std::noshowpos << " ± " << sd[k] << "\n";
  if (!s.statement.empty()) std::cout << "  statement: " << s.statement << "\n";
  std::cout.unsetf(std::ios::floatfield);
}

// The last event of the user that is neither an undo nor undone; 0 when there is none.
int64_t last_undoable(const users::ProfileStore& store, const std::string& user) {
  const auto events = store.events(user);
  std::set<int64_t> undone;
  for (const auto& e : events)
    if (e.type == users::EventType::kUndo) undone.insert(e.target);
  for (auto it = events.rbegin(); it != events.rend(); ++it)
    if (it->type != users::EventType::kUndo && !undone.count(it->id)) return it->id;
  return 0;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

int run_chat(ChatFlags f) {
  // --user and --reward are the strategy options' own flags: here they name the stored user and their scorer.
  const std::string user = f.options.user, reward_dir = f.options.reward;
  PALIGN_CHECK(!user.empty(), ErrorCode::kInvalidArgument, "[cli.chat] give --user U (palign user create)");
  f.options.user.clear();
  std::vector<std::string> given;
  for (const auto& [option, name] : f.fields)
    if (option->count() > 0 && name != "user") given.push_back(name);
  const bool ranks_by_reward = f.strategy == "best_of_n" || f.strategy == "cd_block" || f.strategy == "args";
  if (!ranks_by_reward) {
    f.options.reward.clear();
    given.erase(std::remove(given.begin(), given.end(), std::string("reward")), given.end());
  }
  PALIGN_CHECK(f.candidates >= 2, ErrorCode::kInvalidArgument, "[cli.chat] --candidates must be at least 2, got ",
               f.candidates);
  const auto policy = users::parse_query_policy(f.policy);
  auto store = users::ProfileStore::open(f.store, {.create = false});
  users::UserState state = store->profile(user);
  PALIGN_CHECK(!reward_dir.empty(), ErrorCode::kInvalidArgument, "[cli.chat] give --reward DIR, the reward user '",
               user, "' was created with");
  const std::string fingerprint = users::scorer_fingerprint(reward_dir);
  PALIGN_CHECK(state.scorer.empty() || state.scorer == fingerprint, ErrorCode::kInvalidArgument, "[cli.chat] ",
               reward_dir, " is not the reward user '", user, "' was created with; pass that reward");
  auto reward = scoring::RewardModel::load(reward_dir);
  users::scorer_dimensions(*reward);

  const fs::path dir = resolve_model_dir(f.model);
  const auto model = runtime::Model::load(dir);
  PALIGN_CHECK(model->config().head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[cli.chat] ",
               dir.string(), " is not a causal language model");
  PALIGN_CHECK(fs::exists(dir / "tokenizer.json"), ErrorCode::kNotFound, "[cli.chat] ", dir.string(),
               " has no tokenizer.json");
  const auto tokenizer = runtime::Tokenizer::from_dir(dir);
  std::optional<runtime::ChatTemplate> chat;
  if (!f.raw) chat.emplace(runtime::ChatTemplate::from_model_dir(dir, f.chat_template));
  const auto stop_ids = runtime::default_stop_ids(dir, *model, &tokenizer);
  Rng rng(derive_seed(f.seed, "chat-query"));
  const bool tty = isatty(STDIN_FILENO);
  uint64_t turn = 0;

  std::cout << "palign chat: " << user << " on " << dir.filename().string() << ". Type a prompt; /profile, /undo, "
            << "/quit.\n"
            << (f.explore ? "Each answer shows the two responses palign learns most from.\n"
                          : "[1] is palign's best guess for you, [2] the alternative it learns most from.\n");
  std::string line;
  while (true) {
    std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    line = trim(line);
    if (!tty) std::cout << line << "\n";  // a transcript of scripted input reads like a session
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/profile") {
      print_profile(store->profile(user));
      continue;
    }
    if (line == "/undo") {
      const int64_t target = last_undoable(*store, user);
      if (target == 0) {
        std::cout << "nothing to undo\n";
        continue;
      }
      users::FeedbackEvent undo;
      undo.type = users::EventType::kUndo;
      undo.target = target;
      state = store->append(user, {undo}).state;
      std::cout << "took back event " << target << " (profile version " << state.version << ")\n";
      continue;
    }
    if (line[0] == '/') {
      std::cout << "unknown command " << line << "; use /profile, /undo or /quit\n";
      continue;
    }
    // Candidates from the strategy, personalized by the posterior as it stands now.
    const auto profile = personalization_of(*store, user, reward_dir);
    decoding::StrategyOptions options = f.options;
    // The plain sampler takes no profile; every other strategy personalizes with it.
    const decoding::StrategySetup setup{
        model.get(), dir, &tokenizer, "", options, f.strategy == "sample" ? nullptr : &profile, {}};
    const auto strategy = decoding::make_strategy(f.strategy, setup, given);
    decoding::StrategyRequest request;
    request.prompt = decoding::encode_prompt(tokenizer, line, chat ? &*chat : nullptr, f.system);
    request.prompt_text = line;
    request.n = f.candidates;
    request.options.max_new_tokens = f.max_new_tokens;
    request.options.sampling.temperature = static_cast<float>(f.temperature);
    request.options.sampling.seed = f.seed + 1000 * turn++;
    request.options.stop_ids = stop_ids;
    std::vector<std::string> texts;
    for (const auto& r : strategy->generate(request)) {
      const std::string t = trim(r.text);
      if (!t.empty() && std::find(texts.begin(), texts.end(), t) == texts.end()) texts.push_back(t);
    }
    if (texts.size() < 2) {
      std::cout << "(the model gave fewer than 2 different answers; try another prompt)\n";
      continue;
    }
    const auto scores = users::score_responses(*reward, line, texts);
    state = store->profile(user);
    const int anchor = f.explore ? -1 : users::best_candidate(state.posterior, scores);
    const auto pair = users::choose_pair(state.posterior, scores, policy, rng, anchor);
    const std::string& a = texts[static_cast<size_t>(pair.first)];
    const std::string& b = texts[static_cast<size_t>(pair.second)];
    std::cout << "[1] " << a << "\n[2] " << b << "\n";
    int choice = -2;
    while (choice == -2) {
      std::cout << "which do you prefer? 1, 2, or n for neither > " << std::flush;
      std::string answer;
      if (!std::getline(std::cin, answer)) break;
      answer = trim(answer);
      if (!tty) std::cout << answer << "\n";
      if (answer == "1")
        choice = 0;
      else if (answer == "2")
        choice = 1;
      else if (answer == "n" || answer == "neither" || answer == "0")
        choice = -1;
      else
        std::cout << "please answer 1, 2 or n\n";
    }
    if (choice == -2) break;  // input ended mid-question: nothing stored
    users::FeedbackEvent e;
    e.type = users::EventType::kChoice;
    e.prompt = line;
    e.responses = {a, b};
    e.scores = {scores[static_cast<size_t>(pair.first)], scores[static_cast<size_t>(pair.second)]};
    e.choice = choice;
    e.scorer = fingerprint;
    const double predicted = users::predictive_preference(state.posterior, e.scores[0], e.scores[1]);
    const auto appended = store->append(user, {e});
    state = appended.state;
    std::cout << "stored event " << appended.ids[0] << " (profile version " << state.version << "; palign gave [1] "
              << std::fixed << std::setprecision(2) << predicted << " before your answer)\n";
    std::cout.unsetf(std::ios::floatfield);
  }
  std::cout << "bye\n";
  return 0;
}

}  // namespace

Command add_chat(CLI::App& root) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* app = root.add_subcommand(
      "chat", "Chat as a user: pick the better of two answers, and palign learns what you prefer as you go");
  app->add_option("--store", f->store,
                  "The profile store (an SQLite file); --user names the user, --reward their "
                  "scorer (the reward the user was created with)")
      ->required();
  app->add_option("--model", f->model, "Hugging Face model directory (default: the shipped model)");
  app->add_option("--candidates", f->candidates, "Responses generated per prompt, among which two are shown")
      ->capture_default_str();
  app->add_option("--query", f->policy, "How the two are chosen: information, variance, thompson or random")
      ->capture_default_str();
  app->add_option("--max-new-tokens", f->max_new_tokens, "Most tokens per response")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app->add_option("--temperature", f->temperature, "Sampling temperature")->capture_default_str();
  app->add_option("--seed", f->seed, "Random seed")->capture_default_str();
  app->add_option("--system", f->system, "System message");
  app->add_option("--chat-template", f->chat_template, "Jinja chat template file (default: the model's)");
  app->add_flag("--raw", f->raw, "Continue the prompt as plain text, without a chat template");
  app->add_flag("--explore", f->explore,
                "Show the pair the query policy picks among all candidates (default: the best guess for the user "
                "beside the alternative the policy picks)");
  std::vector<std::string> names;
  for (const auto& info : decoding::strategies()) names.push_back(info.name);
  app->add_option("--strategy", f->strategy, "Decoding strategy, personalized by the user's posterior")
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  f->options.visit_fields([&](const char* name, auto& field, const char* help, const char*) {
    f->fields.emplace_back(app->add_option("--" + std::string(name), field, help)->capture_default_str(), name);
  });
  return {app, [f] { return run_chat(*f); }};
}

}  // namespace palign::cli
