// palign train steer: steering vectors, one per preference dimension of the pairs — mean differences of the residual
// stream or BiPO-trained — for `palign generate --strategy steer`.
#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/decoding/steering.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/preference_data.h"
#include "palign/training/pair_types.h"
#include "palign/training/steering_trainer.h"

namespace palign::cli {

namespace fs = std::filesystem;

Command add_train_steer(CLI::App& train) {
  struct Flags {
    std::string data, model, out, method = "mean_diff";
    int64_t layer = -1;
    int64_t max_tokens = 128;
    training::BipoOptions bipo;
    bool no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = train.add_subcommand(
      "steer", "Steering vectors per preference dimension: the mean difference of the residual stream between chosen "
               "and rejected responses");
  app->add_option("--data", f->data, "Per-dimension preference pairs, JSON Lines {prompt, chosen, rejected, dimension}")
      ->required();
  app->add_option("--model", f->model, "The policy model directory (default: the shipped model)");
  app->add_option("--out", f->out, "Output safetensors file")->required();
  app->add_option("--method", f->method, "mean_diff or bipo")
      ->check(CLI::IsMember({"mean_diff", "bipo"}))
      ->capture_default_str();
  app->add_option("--beta", f->bipo.beta, "bipo: β of the preference loss")->capture_default_str();
  app->add_option("--lr", f->bipo.lr, "bipo: AdamW learning rate")->capture_default_str();
  app->add_option("--epochs", f->bipo.epochs, "bipo: passes over each dimension's pairs")->capture_default_str();
  app->add_option("--batch", f->bipo.batch, "bipo: pairs per step")->capture_default_str();
  app->add_option("--seed", f->bipo.seed, "bipo: split, batch order and directions")->capture_default_str();
  app->add_option("--valid-share", f->bipo.valid_share, "bipo: share of pairs held out for validation")
      ->capture_default_str();
  app->add_option("--patience", f->bipo.patience, "bipo: validations without improvement before stopping")
      ->capture_default_str();
  app->add_option("--checkpoint-every", f->bipo.checkpoint_every,
                  "bipo: steps between checkpoints in OUT.checkpoint/DIMENSION (a rerun resumes from them)")
      ->capture_default_str();
  app->add_option("--stop-at", f->bipo.stop_at,
                  "bipo: stop each dimension (with a checkpoint) after this many steps; 0 = run to the end")
      ->capture_default_str();
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  app->add_option("--layer", f->layer, "Decoder layer (0-based) whose output is steered (default: the middle one)");
  app->add_option("--max-tokens", f->max_tokens, "Prompt + response tokens per row (longer rows are cut)")
      ->capture_default_str();
  return {app, [f] {
            const fs::path dir = resolve_model_dir(f->model);
            const auto model = runtime::Model::load(dir);
            PALIGN_CHECK(fs::exists(dir / "tokenizer.json"), ErrorCode::kNotFound, "[cli.train.steer] ", dir.string(),
                         " has no tokenizer.json to encode the pairs");
            const auto tok = runtime::Tokenizer::from_dir(dir);
            const int64_t layer = f->layer < 0 ? model->config().n_layer / 2 : f->layer;
            PALIGN_CHECK(layer < model->config().n_layer, ErrorCode::kInvalidArgument, "[cli.train.steer] --layer ",
                         layer, " is outside the model's ", model->config().n_layer, " layers (0-based)");
            PALIGN_CHECK(f->max_tokens >= 2, ErrorCode::kInvalidArgument,
                         "[cli.train.steer] --max-tokens must be >= 2, got ", f->max_tokens);
            const int64_t max_tokens = std::min(f->max_tokens, model->config().max_position);
            std::map<std::string, std::vector<decoding::TokenPair>> by_dimension;
            std::map<std::string, std::vector<training::SequencePair>> arm_pairs;  // bipo
            nlohmann::json bipo_report = nlohmann::json::object();
            for (const auto& r : scoring::read_preference_jsonl(f->data)) {
              PALIGN_CHECK(!r.dimension.empty(), ErrorCode::kInvalidArgument, "[cli.train.steer] ", f->data,
                           " has a pair without \"dimension\"; steering vectors are per dimension");
              const auto c = scoring::tokenize_response(tok, r.prompt, r.chosen, max_tokens);
              const auto x = scoring::tokenize_response(tok, r.prompt, r.rejected, max_tokens);
              decoding::TokenPair p;
              p.prompt.assign(c.ids.begin(), c.ids.begin() + c.response_start);
              p.chosen.assign(c.ids.begin() + c.response_start, c.ids.end());
              p.rejected.assign(x.ids.begin() + x.response_start, x.ids.end());
              if (p.chosen.empty() || p.rejected.empty()) continue;  // cut away by --max-tokens
              // The rejected response continues its own prompt tokens (a tokenizer may merge differently).
              if (!std::equal(p.prompt.begin(), p.prompt.end(), x.ids.begin())) continue;
              by_dimension[r.dimension].push_back(std::move(p));
              arm_pairs[r.dimension].push_back({c, x});
            }
            std::vector<decoding::SteeringVector> vectors;
            nlohmann::json summary = nlohmann::json::array();
            const fs::path checkpoints = f->out + ".checkpoint";
            bool stopped = false;
            for (const auto& [name, pairs] : by_dimension) {
              PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[cli.train.steer] dimension '", name,
                           "' has no pair that fits in --max-tokens ", max_tokens);
              at::Tensor v;
              if (f->method == "bipo") {
                training::BipoOptions o = f->bipo;
                o.layer = layer;
                o.progress = !f->no_progress;
                o.checkpoint_dir = checkpoints / name;
                training::BipoReport rep;
                v = training::train_bipo_vector(*model, arm_pairs[name], o, &rep);
                stopped = stopped || rep.stopped;
                bipo_report[name] = {{"steps", rep.steps},
                                     {"stopped", rep.stopped},
                                     {"resumed_at", rep.resumed_at},
                                     {"train_loss", finite_or_null(rep.train_loss)},
                                     {"valid_loss", finite_or_null(rep.valid_loss)},
                                     {"valid_accuracy", finite_or_null(rep.valid_accuracy)}};
              } else {
                v = decoding::mean_difference_vector(*model, pairs, layer);
              }
              vectors.push_back({.name = name, .layer = layer, .vector = v});
              summary.push_back({{"dimension", name},
                                 {"pairs", pairs.size()},
                                 {"layer", layer},
                                 {"norm", vectors.back().vector.norm().item<double>()}});
              if (bipo_report.contains(name)) summary.back()["bipo"] = bipo_report[name];
            }
            decoding::save_steering_vectors(f->out, vectors);
            if (f->method == "bipo" && !stopped) fs::remove_all(checkpoints);  // finished: a rerun starts afresh
            print_json_line(
                nlohmann::json{{"out", f->out}, {"method", f->method}, {"stopped", stopped}, {"vectors", summary}}
                    .dump());
            return 0;
          }};
}

}  // namespace palign::cli
