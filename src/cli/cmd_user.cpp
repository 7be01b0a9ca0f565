// palign user create|prior|feedback|show|list|history|export|import|delete|rebuild: users in a durable profile store
// (palign/users/store.h), learnt online from their feedback (palign/users/online_model.h).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/scoring/reward_model.h"
#include "palign/users/online_model.h"
#include "palign/users/prior_file.h"
#include "palign/users/scorer.h"
#include "palign/users/store.h"
#include "user_common.h"

namespace palign::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct UserFlags {
  std::string store, user, reward, prior, pairs, out, events, key, file;
  std::string prompt, chosen, rejected, response, rating, statement, dimension;
  double prior_precision = 1.0, shrinkage = 0.1, direction = 0, strength = 1.0;
  int64_t undo = 0;
  bool replace = false;
};

std::unique_ptr<users::ProfileStore> open_store(const UserFlags& f, bool create = false) {
  PALIGN_CHECK(!f.store.empty(), ErrorCode::kInvalidArgument, "[cli.user] give --store FILE (an SQLite file)");
  return users::ProfileStore::open(f.store, {.create = create});
}

// The reward as the user's scorer, checked against the fingerprint the user was created with.
std::unique_ptr<scoring::RewardModel> load_scorer(const UserFlags& f, const users::UserState& state) {
  PALIGN_CHECK(!f.reward.empty(), ErrorCode::kInvalidArgument,
               "[cli.user] scoring responses needs --reward DIR, "
               "the reward user '",
               state.user_id, "' was created with");
  const std::string fingerprint = users::scorer_fingerprint(f.reward);
  PALIGN_CHECK(state.scorer.empty() || fingerprint == state.scorer, ErrorCode::kInvalidArgument, "[cli.user] ",
               f.reward, " is not the reward user '", state.user_id, "' was created with (fingerprint ", fingerprint,
               ", the user's ", state.scorer, "); pass that reward");
  auto reward = scoring::RewardModel::load(f.reward);
  users::scorer_dimensions(*reward);
  return reward;
}

// Events from the flags (one) or from --events (JSON Lines); choices and ratings without "scores" are scored.
std::vector<users::FeedbackEvent> collect_events(const UserFlags& f, const users::UserState& state) {
  std::vector<json> raw;
  if (!f.events.empty()) {
    std::ifstream file;
    if (f.events != "-") {
      file.open(f.events);
      PALIGN_CHECK(file.good(), ErrorCode::kNotFound, "[cli.user] no events file ", f.events);
    }
    std::istream& in = f.events == "-" ? std::cin : file;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        raw.push_back(json::parse(line));
      } catch (const json::exception&) {
        PALIGN_THROW(ErrorCode::kInvalidArgument, "[cli.user] ", f.events == "-" ? "stdin" : f.events, " line ", n,
                     " is not JSON; give one event object per line");
      }
    }
  } else if (!f.chosen.empty() || !f.rejected.empty()) {
    PALIGN_CHECK(!f.chosen.empty() && !f.rejected.empty(), ErrorCode::kInvalidArgument,
                 "[cli.user] a choice needs both --chosen and --rejected");
    raw.push_back({{"type", "choice"}, {"prompt", f.prompt}, {"responses", {f.chosen, f.rejected}}, {"choice", 0}});
  } else if (!f.response.empty()) {
    PALIGN_CHECK(f.rating == "up" || f.rating == "down", ErrorCode::kInvalidArgument,
                 "[cli.user] a rating needs --rating up or --rating down");
    raw.push_back(
        {{"type", "rating"}, {"prompt", f.prompt}, {"responses", {f.response}}, {"rating", f.rating == "up" ? 1 : -1}});
  } else if (!f.statement.empty() || !f.dimension.empty()) {
    json j = {{"type", "statement"}, {"text", f.statement}};
    if (!f.dimension.empty())
      j.update({{"dimension", f.dimension}, {"direction", f.direction}, {"strength", f.strength}});
    raw.push_back(j);
  } else if (f.undo > 0) {
    raw.push_back({{"type", "undo"}, {"target", f.undo}});
  } else {
    PALIGN_THROW(ErrorCode::kInvalidArgument,
                 "[cli.user] no feedback given: pass --chosen/--rejected, --response "
                 "with --rating, --statement (or --dimension), --undo ID, or --events FILE");
  }
  std::unique_ptr<scoring::RewardModel> reward;
  std::vector<users::FeedbackEvent> events;
  for (auto& j : raw) {
    if (j.is_object() && !f.key.empty() && raw.size() == 1 && !j.contains("key")) j["key"] = f.key;
    const std::string type = j.is_object() ? j.value("type", "") : "";
    if ((type == "choice" || type == "rating") && !j.contains("scores") && j.contains("responses") &&
        j["responses"].is_array()) {
      if (!reward) reward = load_scorer(f, state);
      std::vector<std::string> responses;
      for (const auto& r : j["responses"]) {
        PALIGN_CHECK(r.is_string(), ErrorCode::kInvalidArgument,
                     "[users.event] the event's \"responses\" are not strings");
        responses.push_back(r.get<std::string>());
      }
      j["scores"] = users::score_responses(*reward, j.value("prompt", ""), responses);
      j["scorer"] = state.scorer;
    }
    events.push_back(users::event_from_json(j));
  }
  return events;
}

std::string read_text(const std::string& path) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(path, std::ios::binary);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[cli.user] no file ", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

Command add_user(CLI::App& root) {
  auto f = std::make_shared<UserFlags>();
  CLI::App* app = root.add_subcommand("user", "Users learnt online from their feedback, in a durable store (SQLite)");
  app->require_subcommand(1);
  auto store_flag = [&](CLI::App* c) {
    c->add_option("--store", f->store, "The profile store (an SQLite file)")->required();
  };
  auto user_flag = [&](CLI::App* c) { c->add_option("--user", f->user, "The user's id")->required(); };

  CLI::App* create = app->add_subcommand("create", "Add a user: the prior over the reward's dimensions, version 0");
  store_flag(create);
  user_flag(create);
  create->add_option("--reward", f->reward, "The user's scorer: a reward with named dimensions (--method multi)")
      ->required();
  create->add_option("--prior", f->prior, "A population prior (palign user prior); default N(0, I / precision)");
  create->add_option("--prior-precision", f->prior_precision, "Precision of the default prior")->capture_default_str();
  create->add_option("--statement", f->statement, "The user's preference statement (their first event)");

  CLI::App* prior =
      app->add_subcommand("prior", "Fit a population prior (mean, full covariance) on known users' pairs");
  prior->add_option("--reward", f->reward, "The scorer: a reward with named dimensions")->required();
  prior->add_option("--pairs", f->pairs, "Labelled pairs with \"user_id\" (JSON Lines)")->required();
  prior->add_option("--out", f->out, "The prior file to write (JSON)")->required();
  prior->add_option("--prior-precision", f->prior_precision, "Precision of each user's fit's N(0, I) prior")
      ->capture_default_str();
  prior->add_option("--shrinkage", f->shrinkage, "Shrink the covariance's off-diagonal by this share, in [0, 1]")
      ->capture_default_str();

  CLI::App* feedback = app->add_subcommand("feedback", "Store feedback (durably) and update the user's posterior");
  store_flag(feedback);
  user_flag(feedback);
  feedback->add_option("--reward", f->reward, "The user's scorer, to score the responses");
  feedback->add_option("--prompt", f->prompt, "The prompt the responses answer");
  feedback->add_option("--chosen", f->chosen, "A choice: the response the user preferred");
  feedback->add_option("--rejected", f->rejected, "A choice: the response the user passed over");
  feedback->add_option("--response", f->response, "A rating: the rated response");
  feedback->add_option("--rating", f->rating, "A rating: up or down");
  feedback->add_option("--statement", f->statement, "A stated preference, as text");
  feedback->add_option("--dimension", f->dimension, "A stated preference on a named dimension");
  feedback->add_option("--direction", f->direction, "With --dimension: > 0 more of it, < 0 less");
  feedback->add_option("--strength", f->strength, "With --dimension: how much the statement counts")
      ->capture_default_str();
  feedback->add_option("--undo", f->undo, "Take back the event with this id");
  feedback->add_option("--events", f->events, "Events as JSON Lines (FILE or - for stdin), stored in one transaction");
  feedback->add_option("--key", f->key, "An idempotency key: feedback with a key the user has is not stored twice");

  CLI::App* show = app->add_subcommand("show", "Print the user's current profile: weights with their sd");
  store_flag(show);
  user_flag(show);
  CLI::App* list = app->add_subcommand("list", "Print the store's users, one per line");
  store_flag(list);
  CLI::App* history = app->add_subcommand("history", "Print the user's events, one JSON line each");
  store_flag(history);
  user_flag(history);
  CLI::App* exp = app->add_subcommand("export", "Write the user (prior and every event) as JSON");
  store_flag(exp);
  user_flag(exp);
  exp->add_option("--out", f->out, "The file to write (default: stdout)");
  CLI::App* imp = app->add_subcommand("import", "Add a user from an export (their events replayed)");
  store_flag(imp);
  imp->add_option("file", f->file, "The export (JSON; - for stdin)")->required();
  imp->add_flag("--replace", f->replace, "Replace a user of the same id");
  CLI::App* del = app->add_subcommand("delete", "Delete the user with every event and version");
  store_flag(del);
  user_flag(del);
  CLI::App* rebuild = app->add_subcommand(
      "rebuild", "Replay the user's events from the prior, compare with the stored profile, store it as a version");
  store_flag(rebuild);
  user_flag(rebuild);

  return {app, [=] {
            if (create->parsed()) {
              auto reward = scoring::RewardModel::load(f->reward);
              const auto names = users::scorer_dimensions(*reward);
              const auto p = f->prior.empty() ? users::prior_dimension_weights(
                                                    names, std::vector<double>(names.size(), 0.0), f->prior_precision)
                                              : users::read_prior_file(f->prior, names);
              auto store = open_store(*f, /*create=*/true);
              const auto state = store->create_user(f->user, p, users::scorer_fingerprint(f->reward), f->statement);
              print_json_line(describe_user(state).dump());
              return 0;
            }
            if (prior->parsed()) {
              auto reward = scoring::RewardModel::load(f->reward);
              const auto p = users::fit_population_prior(*reward, f->pairs, f->prior_precision, f->shrinkage);
              const json out = {{"format", "palign.prior"},
                                {"names", p.names},
                                {"mean", p.mean},
                                {"covariance", p.covariance},
                                {"scorer", users::scorer_fingerprint(f->reward)}};
              std::ofstream file(f->out);
              PALIGN_CHECK(file.good(), ErrorCode::kIo, "[cli.user] cannot write ", f->out);
              file << out.dump(1) << "\n";
              file.close();
              PALIGN_CHECK(file.good(), ErrorCode::kIo, "[cli.user] cannot write ", f->out);
              nlohmann::ordered_json summary = {{"prior", f->out}, {"dimensions", p.names.size()}};
              const auto sd = p.sd();
              for (size_t k = 0; k < p.names.size(); ++k)
                summary["weights"][p.names[k]] = {{"mean", p.mean[k]}, {"sd", sd[k]}};
              print_json_line(summary.dump());
              return 0;
            }
            if (imp->parsed()) {
              json j;
              try {
                j = json::parse(read_text(f->file));
              } catch (const json::exception&) {
                PALIGN_THROW(ErrorCode::kInvalidArgument, "[cli.user] ", f->file,
                             " is not JSON; import a file written by `palign user export`");
              }
              // Importing into a new file creates the store, so what is not an export is refused before that.
              PALIGN_CHECK(j.is_object() && j.value("format", "") == "palign.user", ErrorCode::kInvalidArgument,
                           "[cli.user] ", f->file,
                           " is not a palign user export (its \"format\" must be \"palign.user\"); export one with "
                           "`palign user export`");
              auto store = open_store(*f, /*create=*/true);
              print_json_line(describe_user(store->import_user(j, f->replace)).dump());
              return 0;
            }
            auto store = open_store(*f);
            if (feedback->parsed()) {
              const auto state = store->profile(f->user);
              const auto appended = store->append(f->user, collect_events(*f, state));
              auto out = describe_user(appended.state);
              out["ids"] = appended.ids;
              out["stored"] = appended.stored;
              print_json_line(out.dump());
              return 0;
            }
            if (show->parsed()) {
              print_json_line(describe_user(store->profile(f->user)).dump());
              return 0;
            }
            if (list->parsed()) {
              for (const auto& u : store->users()) std::cout << u << "\n";
              return 0;
            }
            if (history->parsed()) {
              for (const auto& e : store->events(f->user))
                print_json_line(users::event_to_json(e).dump(-1, ' ', false, json::error_handler_t::replace));
              return 0;
            }
            if (exp->parsed()) {
              const std::string text = store->export_user(f->user).dump(-1, ' ', false, json::error_handler_t::replace);
              if (f->out.empty()) {
                std::cout << text << "\n";
              } else {
                std::ofstream file(f->out);
                file << text << "\n";
                file.close();
                PALIGN_CHECK(file.good(), ErrorCode::kIo, "[cli.user] cannot write ", f->out);
              }
              return 0;
            }
            if (del->parsed()) {
              store->delete_user(f->user);
              print_json_line(json{{"deleted", f->user}}.dump());
              return 0;
            }
            // rebuild
            const auto stored = store->profile(f->user);
            const auto replayed = store->rebuild(f->user);
            double diff = 0;
            for (size_t i = 0; i < stored.posterior.mean.size(); ++i)
              diff = std::max(diff, std::abs(stored.posterior.mean[i] - replayed.posterior.mean[i]));
            for (size_t i = 0; i < stored.posterior.covariance.size(); ++i)
              diff = std::max(diff, std::abs(stored.posterior.covariance[i] - replayed.posterior.covariance[i]));
            const bool equal = stored.posterior.mean == replayed.posterior.mean &&
                               stored.posterior.covariance == replayed.posterior.covariance &&
                               stored.statement == replayed.statement && stored.events == replayed.events;
            const auto written = equal ? stored : store->store_rebuilt(f->user);
            auto out = describe_user(written);
            out["equal"] = equal;
            out["max_difference"] = diff;
            print_json_line(out.dump());
            return 0;
          }};
}

}  // namespace palign::cli
