// palign train steer: steering vectors, one per preference dimension of the pairs — mean differences of the residual
// stream or BiPO-trained — for `palign generate --strategy steer`.
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/preference_data.h"
#include "palign/scoring/steering_vectors.h"
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
            training::SteeringTrainOptions o;
            o.method = f->method;
            o.layer = f->layer;
            o.max_tokens = f->max_tokens;
            o.bipo = f->bipo;
            o.checkpoint_root = f->out + ".checkpoint";
            o.progress = !f->no_progress;
            const auto r = training::train_steering(*model, runtime::Tokenizer::from_dir(dir),
                                                    scoring::read_preference_jsonl(f->data), o);
            nlohmann::json summary = nlohmann::json::array();
            for (const auto& d : r.dimensions) {
              summary.push_back({{"dimension", d.name}, {"pairs", d.pairs}, {"layer", r.layer}, {"norm", d.norm}});
              if (d.bipo)
                summary.back()["bipo"] = {{"steps", d.bipo->steps},
                                          {"stopped", d.bipo->stopped},
                                          {"resumed_at", d.bipo->resumed_at},
                                          {"train_loss", finite_or_null(d.bipo->train_loss)},
                                          {"valid_loss", finite_or_null(d.bipo->valid_loss)},
                                          {"valid_accuracy", finite_or_null(d.bipo->valid_accuracy)}};
            }
            scoring::save_steering_vectors(f->out, r.vectors);
            if (f->method == "bipo" && !r.stopped)
              fs::remove_all(o.checkpoint_root);  // finished: a rerun starts afresh
            print_json_line(
                nlohmann::json{{"out", f->out}, {"method", f->method}, {"stopped", r.stopped}, {"vectors", summary}}
                    .dump());
            return 0;
          }};
}

}  // namespace palign::cli
