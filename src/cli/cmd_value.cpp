// palign train value: a prefix value model for `palign generate --strategy value` (training/value_trainer.h): rollouts
// of the policy from the data's prompts, scored whole by a reward directory, regressed onto every prefix.
#include <cmath>
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/preference_data.h"
#include "palign/scoring/reward_model.h"
#include "palign/training/reward_trainer.h"
#include "palign/training/value_trainer.h"

namespace palign::cli {

namespace fs = std::filesystem;

// What --strategy value reads beside the classifier: how the value model was made.
constexpr const char* kValueManifest = "palign_value.json";

Command add_train_value(CLI::App& train) {
  struct Flags {
    std::string data, model, reward, out, user;
    int64_t max_prompts = 0;
    float temperature = 1.0f;
    training::ValueOptions o;
  };
  auto f = std::make_shared<Flags>();
  f->o.generate.max_new_tokens = 32;
  CLI::App* app = train.add_subcommand(
      "value",
      "A prefix value model for --strategy value: rollouts of the policy scored by a reward, regressed onto every "
      "prefix (CD-FUDGE; TD(lambda) targets as VAS with --td-lambda < 1)");
  app->add_option("--data", f->data, "JSON Lines whose \"prompt\" fields are the prompts to roll out from")->required();
  app->add_option("--model", f->model, "The policy model directory (default: the shipped model)");
  app->add_option("--reward", f->reward, "A reward directory (palign train reward) scoring whole rollouts")->required();
  app->add_option("--user", f->user, "A user the personalized reward has seen (default: its generic user)");
  app->add_option("--out", f->out, "Output directory (a sequence-classification model on the policy's backbone)")
      ->required();
  auto& o = f->o;
  app->add_option("--rollouts", o.rollouts, "Rollouts per prompt")->capture_default_str()->check(CLI::Range(1, 4096));
  app->add_option("--max-new-tokens", o.generate.max_new_tokens, "Tokens per rollout")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--temperature", f->temperature, "Sampling temperature of the rollouts")
      ->capture_default_str()
      ->check(finite_above(0, false));
  app->add_option("--max-prompts", f->max_prompts, "Use the first N distinct prompts (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--td-lambda", o.td_lambda, "1: Monte Carlo targets (CD-FUDGE); below 1: TD(lambda) targets (VAS)")
      ->capture_default_str();
  app->add_option("--td-rounds", o.td_rounds, "TD(lambda): refits from the last fit's values")->capture_default_str();
  app->add_option("--l2", o.l2, "Ridge strength x the features' mean square (< 0: chosen on the held-out prompts)")
      ->capture_default_str();
  app->add_option("--valid-share", o.valid_share, "Share of prompts held out")->capture_default_str();
  app->add_option("--seed", o.generate.sampling.seed, "Rollout seed (prompt p samples from seed + 1000 p)")
      ->capture_default_str();
  return {
      app, [f] {
        training::ValueOptions o = f->o;
        o.generate.sampling.temperature = f->temperature;
        const std::string err = o.validate();
        PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[cli.train.value] ", err);
        const fs::path dir = resolve_model_dir(f->model);
        const auto model = runtime::Model::load(dir);
        PALIGN_CHECK(fs::exists(dir / "tokenizer.json"), ErrorCode::kNotFound, "[cli.train.value] ", dir.string(),
                     " has no tokenizer.json to encode the prompts");
        const auto tok = runtime::Tokenizer::from_dir(dir);
        std::vector<std::string> texts;
        for (const auto& r : scoring::read_preference_jsonl(f->data)) {
          if (std::find(texts.begin(), texts.end(), r.prompt) != texts.end()) continue;
          if (f->max_prompts > 0 && std::ssize(texts) == f->max_prompts) break;
          texts.push_back(r.prompt);
        }
        PALIGN_CHECK(!texts.empty(), ErrorCode::kInvalidArgument, "[cli.train.value] ", f->data, " has no prompts");
        std::vector<std::vector<int64_t>> prompts;
        for (const auto& t : texts) prompts.push_back(decoding::encode_prompt(tok, t));
        const auto reward = scoring::RewardModel::load(f->reward);
        PALIGN_CHECK(f->user.empty() || reward->personalized(), ErrorCode::kInvalidArgument, "[cli.train.value] ",
                     f->reward, " is the same for every user; drop --user");
        o.generate.stop_ids = runtime::default_stop_ids(dir, *model, &tok);
        const training::RolloutReward score = [&](int64_t p, const std::vector<std::vector<int64_t>>& rollouts) {
          std::vector<std::vector<double>> out;
          for (const auto& ids : rollouts)
            out.push_back(reward->score(texts[static_cast<size_t>(p)], runtime::decode_generated(tok, ids), f->user));
          return out;
        };
        const auto rollouts = training::sample_value_rollouts(*model, &tok, prompts, score, o);
        const training::ValueFit fit = training::fit_value(rollouts, static_cast<int64_t>(prompts.size()), o);
        training::write_classifier_directory(f->out, *model, dir, fit.head, reward->labels());
        const nlohmann::json report = {{"prompts", prompts.size()},
                                       {"rollouts", rollouts.ids.size()},
                                       {"mean_rollout_tokens", fit.mean_rollout_tokens},
                                       {"train_prefixes", fit.train_prefixes},
                                       {"valid_prefixes", fit.valid_prefixes},
                                       {"l2", fit.l2},
                                       {"train_r2", finite_or_null(fit.train_r2)},
                                       {"valid_r2", finite_or_null(fit.valid_r2)},
                                       {"valid_r2_first_token", finite_or_null(fit.valid_r2_first)}};
        nlohmann::json bias = nlohmann::json::array();
        for (int64_t k = 0; k < fit.bias.size(0); ++k) bias.push_back(fit.bias[k].item<double>());
        write_json_file(fs::path(f->out) / kValueManifest,
                        {{"format", "palign.value"},
                         {"version", 1},
                         {"policy", dir.string()},
                         {"reward", f->reward},
                         {"user", f->user},
                         {"labels", reward->labels()},
                         {"targets", o.td_lambda < 1 ? "td_lambda" : "monte_carlo"},
                         {"td_lambda", o.td_lambda},
                         {"td_rounds", o.td_lambda < 1 ? o.td_rounds : 0},
                         {"rollouts_per_prompt", o.rollouts},
                         {"max_new_tokens", o.generate.max_new_tokens},
                         {"temperature", f->temperature},
                         {"seed", o.generate.sampling.seed},
                         {"bias", bias},
                         {"report", report}},
                        "cli.train.value");
        print_json_line(nlohmann::json{{"out", f->out}, {"labels", reward->labels()}, {"report", report}}.dump());
        return 0;
      }};
}

}  // namespace palign::cli
