// palign profile create / show: the user profile directories that `palign generate --user-profile DIR` reads.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
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
    std::string dir, user, weights, statement, reward, history;
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
  CLI::App* show = app->add_subcommand("show", "Print a profile as one JSON line");
  show->add_option("dir", f->dir, "The profile directory")->required();
  return {app, [f, create] {
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
                  ok = used == item.size() - eq - 1;
                } catch (const std::exception&) {
                  ok = false;
                }
              }
              PALIGN_CHECK(ok, ErrorCode::kInvalidArgument, "[cli.profile] --weights: '", item,
                           "' is not name=number; e.g. --weights humour=0.8,length=-0.3");
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
