// palign profile create / fit / show: the user profile directories that `palign generate --user-profile DIR` reads.
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/scoring/reward_model.h"
#include "palign/users/dimension_weights.h"
#include "palign/users/profile.h"

namespace palign::cli {

namespace fs = std::filesystem;

namespace {

nlohmann::json describe(const users::UserProfile& p) {
  return {{"version", p.version}, {"user_id", p.user_id},         {"weights", p.weights},
          {"statement", p.statement}, {"reward", p.reward.string()}, {"history", p.history.string()}};
}

}  // namespace

Command add_profile(CLI::App& root) {
  struct Flags {
    std::string dir, user, weights, statement, reward, history, pairs;
    double prior_precision = 1.0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = root.add_subcommand("profile", "Create or show a user profile directory (--user-profile DIR)");
  app->require_subcommand(1);
  CLI::App* create = app->add_subcommand("create", "Write DIR/profile.json; an existing profile gets a new version");
  create->add_option("--out", f->dir, "The profile directory")->required();
  create->add_option("--user", f->user, "The user's id");
  create->add_option("--weights", f->weights, "Weights over preference dimensions: name=weight,name=weight");
  create->add_option("--statement", f->statement, "The user's preference statement");
  create->add_option("--reward", f->reward, "A reward directory from palign train reward that knows the user");
  create->add_option("--history", f->history, "The user's labelled pairs (JSON Lines)");
  CLI::App* fit = app->add_subcommand(
      "fit", "Learn a profile's weights over a multi-label reward's labels from the user's pairs (with their sd)");
  fit->add_option("--out", f->dir, "The profile directory")->required();
  fit->add_option("--reward", f->reward, "A multi-label reward: palign train reward --method multi, or arm")
      ->required();
  fit->add_option("--pairs", f->pairs, "The user's labelled pairs (JSON Lines); kept as the profile's history")
      ->required();
  fit->add_option("--user", f->user, "Use only this user's pairs (\"user_id\"), and name the profile after them");
  fit->add_option("--prior-precision", f->prior_precision, "Precision of the N(0, I) prior on the weights")
      ->capture_default_str();
  CLI::App* show = app->add_subcommand("show", "Print a profile as one JSON line");
  show->add_option("dir", f->dir, "The profile directory")->required();
  return {app, [f, create, fit] {
            if (fit->parsed()) {
              users::UserProfile p;
              if (fs::exists(fs::path(f->dir) / "profile.json")) p = users::UserProfile::load(f->dir);
              std::vector<scoring::PreferenceRecord> pairs;
              for (auto& r : scoring::read_preference_jsonl(f->pairs))
                if (f->user.empty() || r.user_id == f->user) pairs.push_back(std::move(r));
              PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[cli.profile] ", f->pairs,
                           " has no pairs of user '", f->user, "'");
              const auto reward = scoring::RewardModel::load(f->reward);
              const auto w = users::fit_weights_from_pairs(*reward, pairs, f->prior_precision);
              for (const auto& [name, mean] : w.as_map()) p.weights[name] = mean;
              if (!f->user.empty()) p.user_id = f->user;
              p.history = fs::absolute(f->pairs);
              p.save(f->dir);
              nlohmann::json out = describe(p);
              const auto sd = w.sd();
              for (size_t k = 0; k < w.names.size(); ++k) out["sd"][w.names[k]] = sd[k];
              out["pairs"] = pairs.size();
              print_json_line(out.dump());
              return 0;
            }
            if (!create->parsed()) {
              print_json_line(describe(users::UserProfile::load(f->dir)).dump());
              return 0;
            }
            // Updating keeps what is not given again.
            users::UserProfile p;
            if (fs::exists(fs::path(f->dir) / "profile.json")) p = users::UserProfile::load(f->dir);
            if (!f->user.empty()) p.user_id = f->user;
            if (!f->statement.empty()) p.statement = f->statement;
            if (!f->reward.empty()) p.reward = fs::absolute(f->reward);
            if (!f->history.empty()) p.history = fs::absolute(f->history);
            for (const std::string& item : split_list(f->weights)) {
              const auto eq = item.find('=');
              double w = 0;
              bool ok = eq != std::string::npos && eq > 0;
              if (ok) {
                try {
                  size_t used = 0;
                  w = std::stod(item.substr(eq + 1), &used);
                  ok = used == item.size() - eq - 1 && std::isfinite(w);
                } catch (const std::exception&) {
                  ok = false;
                }
              }
              PALIGN_CHECK(ok, ErrorCode::kInvalidArgument, "[cli.profile] --weights: '", item,
                           "' is not name=number (a finite number); e.g. --weights humour=0.8,length=-0.3");
              p.weights[item.substr(0, eq)] = w;
            }
            for (const auto* path : {&p.reward, &p.history})
              PALIGN_CHECK(path->empty() || fs::exists(*path), ErrorCode::kNotFound, "[cli.profile] ",
                           path->string(), " does not exist");
            p.save(f->dir);
            print_json_line(describe(p).dump());
            return 0;
          }};
}

}  // namespace palign::cli
