// palign score / eval reward: scoring responses with a reward directory, one or a JSONL file of them in one process,
// and a reward's held-out accuracy on preference pairs.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/strings.h"
#include "palign/scoring/reward_eval.h"
#include "palign/scoring/reward_model.h"

namespace palign::cli {

using nlohmann::json;

namespace {

json scored(const scoring::RewardModel& model, const std::vector<double>& scores, const std::string& user) {
  json out = {{"method", model.method()}, {"scores", scores}, {"labels", model.labels()}};
  if (scores.size() == 1) out["reward"] = scores[0];
  if (model.personalized()) out["user"] = user;
  return out;
}

// One JSON line per line of data: {prompt, response[, user]} (user_id is read as user too).
void score_file(scoring::RewardModel& model, const std::string& dir, const std::string& data) {
  std::ifstream in(data);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[cli.score] cannot read ", data, "; pass a JSON Lines file of ",
               "{\"prompt\", \"response\"[, \"user\"]}");
  const auto known = model.users();
  std::string line;
  int64_t n = 0, users_ignored = 0;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    PALIGN_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string() && j.contains("response") &&
                     j["response"].is_string(),
                 ErrorCode::kInvalidArgument, "[cli.score] ", data, " line ", number,
                 " is not a JSON object with string \"prompt\" and \"response\"");
    std::string user = j.value("user", j.value("user_id", std::string()));
    if (!model.personalized() && !user.empty()) {
      ++users_ignored;
      user.clear();
    }
    PALIGN_CHECK(user.empty() || std::find(known.begin(), known.end(), user) != known.end(), ErrorCode::kNotFound,
                 "[cli.score] ", data, " line ", number, ": ", dir, " has not seen user '", user,
                 "'; leave the user out to score as the generic user, or use --user-pairs for a new one");
    json out = scored(model, model.score(j["prompt"], j["response"], user), user.empty() ? "(generic)" : user);
    out["line"] = number;
    print_json_line(out.dump());
    ++n;
  }
  PALIGN_CHECK(n > 0, ErrorCode::kInvalidArgument, "[cli.score] ", data, " holds no lines to score");
  if (users_ignored > 0)
    std::cerr << "note: " << users_ignored << " lines name a user; " << dir << " (" << model.method()
              << ") is the same for every user, so they were scored alike\n";
}

}  // namespace

Command add_score(CLI::App& root) {
  struct Flags {
    std::string reward, user, user_pairs, prompt, response, ids, data;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = root.add_subcommand("score", "Score responses with a reward model (one JSON line each)");
  app->add_option("--reward", f->reward, "Reward directory (palign train reward, or a *ForSequenceClassification)")
      ->required();
  app->add_option("--user", f->user, "A user seen in training (personalized rewards)");
  app->add_option("--user-pairs", f->user_pairs, "A new user's labelled pairs, JSON Lines (personalized rewards)");
  auto* prompt = app->add_option("--prompt", f->prompt, "The prompt");
  app->add_option("--response", f->response, "The response")->needs(prompt);
  auto* ids = app->add_option("--ids", f->ids, "Token ids of the whole text instead (classification rewards)");
  ids->excludes(prompt);
  app->add_option("--data", f->data,
                  "JSON Lines of {\"prompt\", \"response\"[, \"user\"]} scored in one process, one output line each")
      ->excludes(prompt)
      ->excludes(ids);
  return {app, [f] {
            PALIGN_CHECK(
                !f->prompt.empty() || !f->ids.empty() || !f->data.empty(), ErrorCode::kInvalidArgument,
                "[cli.score] nothing to score; pass --prompt P --response R, --data FILE.jsonl or --ids 1,2,3");
            auto model = scoring::RewardModel::load(f->reward);
            if (!f->data.empty()) {
              PALIGN_CHECK(f->user.empty() && f->user_pairs.empty(), ErrorCode::kInvalidArgument,
                           "[cli.score] with --data each line names its user (\"user\"); drop --user/--user-pairs");
              score_file(*model, f->reward, f->data);
              return 0;
            }
            if (!f->ids.empty()) {
              PALIGN_CHECK(f->user.empty() && f->user_pairs.empty(), ErrorCode::kInvalidArgument,
                           "[cli.score] --ids scores with a classification reward; --user and --user-pairs need "
                           "--prompt and --response");
              print_json_line(scored(*model, model->score_ids(parse_ids(f->ids, "--ids")), "(generic)").dump());
              return 0;
            }
            PALIGN_CHECK(model->personalized() || (f->user.empty() && f->user_pairs.empty()),
                         ErrorCode::kInvalidArgument, "[cli.score] ", f->reward, " is a ", model->method(),
                         " reward, the same for every user; drop --user/--user-pairs");
            PALIGN_CHECK(f->user.empty() || f->user_pairs.empty(), ErrorCode::kInvalidArgument,
                         "[cli.score] pass either --user (seen in training) or --user-pairs (a new user), not both");
            const auto known = model->users();
            PALIGN_CHECK(f->user.empty() || std::find(known.begin(), known.end(), f->user) != known.end(),
                         ErrorCode::kNotFound, "[cli.score] user '", f->user, "' was not in the training data (",
                         known.size(),
                         " users); pass --user-pairs FILE with their labelled pairs, or leave out "
                         "--user for the generic user");
            std::vector<scoring::PreferenceRecord> pairs;
            if (!f->user_pairs.empty()) pairs = scoring::read_preference_jsonl(f->user_pairs);
            const auto scores = model->score(f->prompt, f->response, f->user, pairs);
            print_json_line(
                scored(*model, scores,
                       !f->user.empty() ? f->user : (!f->user_pairs.empty() ? "(from --user-pairs)" : "(generic)"))
                    .dump());
            return 0;
          }};
}

Command add_eval_reward(CLI::App& eval) {
  struct Flags {
    std::string reward, data;
    uint64_t seed = 0;
    bool json = false, no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = eval.add_subcommand(
      "reward",
      "A reward's accuracy on held-out preference pairs, overall, per dimension and per user (95% intervals)");
  app->add_option("--reward", f->reward, "Reward directory (palign train reward, or a *ForSequenceClassification)")
      ->required();
  app->add_option("--data", f->data, "Held-out pairs, JSON Lines {prompt, chosen, rejected[, user_id, dimension]}")
      ->required();
  app->add_option("--seed", f->seed, "Seed of the bootstrap intervals")->capture_default_str();
  app->add_flag("--json", f->json, "Print one JSON object");
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f] {
            auto model = scoring::RewardModel::load(f->reward);
            const auto pairs = scoring::read_preference_jsonl(f->data);
            ProgressBar bar("eval reward", std::ssize(pairs), !f->no_progress);
            const auto e =
                scoring::evaluate_reward(*model, pairs, f->seed, [&](int64_t done, int64_t) { bar.update(done); });
            bar.finish();
            auto row = [](const scoring::Accuracy& a) {
              return json{{"accuracy", a.value}, {"lo", a.lo}, {"hi", a.hi}, {"pairs", a.pairs}};
            };
            json out = row(e.overall);
            out["method"] = model->method();
            out["unseen_users"] = e.unseen_users;
            out["by_dimension"] = json::object();
            out["by_user"] = json::object();
            for (const auto& [d, a] : e.by_dimension) out["by_dimension"][d.empty() ? "(none)" : d] = row(a);
            for (const auto& [u, a] : e.by_user) out["by_user"][u.empty() ? "(none)" : u] = row(a);
            if (f->json) {
              print_json_line(out.dump());
              return 0;
            }
            auto line = [](const std::string& name, const json& a) {
              std::printf("%-24s %.3f  [%.3f, %.3f]  %lld pairs\n", name.c_str(), a["accuracy"].get<double>(),
                          a["lo"].get<double>(), a["hi"].get<double>(), a["pairs"].get<long long>());
            };
            line("overall (" + model->method() + ")", out);
            for (const auto& [d, a] : out["by_dimension"].items()) line("dimension " + d, a);
            for (const auto& [u, a] : out["by_user"].items()) line("user " + u, a);
            if (e.unseen_users > 0)
              std::printf("%lld users were not seen in training and were scored as the generic user\n",
                          static_cast<long long>(e.unseen_users));
            return 0;
          }};
}

}  // namespace palign::cli
