// palign train reward: reward models from preference data.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/scoring/reward_model.h"
#include "palign/training/reward_trainer.h"

namespace palign::cli {

using nlohmann::json;

Command add_train_reward(CLI::App& train) {
  struct Flags {
    training::RewardTrainOptions o;
    std::string data, backbone, out, cache, objectives;
    std::string features = scoring::FeatureSpec::recommended().text();
    std::string lora_targets = "q_proj,k_proj,v_proj,o_proj";
    bool no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = train.add_subcommand(
      "reward",
      "Train a reward model on preference pairs over a frozen backbone's cached features (arm: a LoRA adapter on the "
      "backbone, GenARM's autoregressive reward)");
  auto& o = f->o;
  app->add_option("--method", o.method, "bt, multi, prm, pal, vpl, linear, arm or maxmin")
      ->check(CLI::IsMember({"bt", "multi", "prm", "pal", "vpl", "linear", "arm", "maxmin"}))
      ->capture_default_str();
  app->add_option("--data", f->data, "Preference pairs, JSON Lines {prompt, chosen, rejected, user_id, dimension}")
      ->required();
  app->add_option("--model,--backbone", f->backbone,
                  "Backbone model directory (default: the shipped model); --backbone is the same flag");
  app->add_option("--out", f->out, "Output directory")->required();
  app->add_option("--feature-cache", f->cache, "Folder where backbone features persist between runs");
  app->add_option("--features", f->features,
                  "prm, pal, vpl: the backbone states their heads read, layers=embed,mid,last;pool=mean,last;length "
                  "(bt and multi read the last token's final state, linear their scores)")
      ->capture_default_str();
  app->add_option("--objectives", f->objectives, "linear: a directory from --method multi on the same backbone");
  // arm has its own defaults for these (PairTrainOptions); a flag given explicitly applies to arm too.
  CLI::Option* epochs =
      app->add_option("--epochs", o.fit.max_epochs, "Most training epochs (arm default: 3)")->capture_default_str();
  CLI::Option* lr = app->add_option("--lr", o.fit.lr, "Learning rate (arm default: 5e-4)")->capture_default_str();
  CLI::Option* weight_decay =
      app->add_option("--weight-decay", o.fit.weight_decay, "Weight decay (arm default: 0)")->capture_default_str();
  app->add_option("--valid-share", o.fit.valid_share, "Share of pairs held out for early stopping")
      ->capture_default_str();
  CLI::Option* patience = app->add_option("--patience", o.fit.patience,
                                          "Epochs without improvement before stopping (arm: validations; default 3)")
                              ->capture_default_str();
  CLI::Option* batch =
      app->add_option("--batch", o.fit.batch, "Pairs per step (arm default: 8)")->capture_default_str();
  app->add_option("--prototypes", o.fit.n_prototypes, "pal: prototype rewards")->capture_default_str();
  app->add_option("--pal-mixture", o.fit.pal_mixture,
                  "pal: how users weigh the prototypes: simplex (softmax, PAL's) or signed (any weights: users outside "
                  "the prototypes' hull)")
      ->check(CLI::IsMember({"simplex", "signed"}))
      ->capture_default_str();
  app->add_option("--latent-dim", o.fit.latent_dim, "vpl: latent size")->capture_default_str();
  app->add_option("--kl-weight", o.fit.kl_weight, "vpl: weight of the KL term of the ELBO")->capture_default_str();
  app->add_option("--context-pairs", o.fit.context_pairs, "vpl: pairs per user the encoder sees")
      ->capture_default_str();
  app->add_option("--embed-dim", o.fit.embed_dim, "prm: user embedding size")->capture_default_str();
  app->add_option("--prior-weight", o.fit.prior_weight,
                  "linear: pull toward the population weights; maxmin: each group head's L2")
      ->capture_default_str();
  app->add_option("--groups", o.fit.groups, "maxmin: preference groups K (0: chosen on held-out pairs)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app->add_option("--max-groups", o.fit.max_groups, "maxmin: the largest K tried when --groups is 0")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app->add_option("--em-restarts", o.fit.em_restarts, "maxmin: random starts of the EM")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app->add_option("--l2", o.l2, "bt, multi: L2 strength (default: picked on held-out pairs)")
      ->check(finite_above(0, true));
  app->add_option("--beta", o.arm.beta, "arm: reward scale β in r = β·Σ log π_r(y_t | x, y_<t)")->capture_default_str();
  app->add_option("--lora-r", o.arm.lora.r, "arm: LoRA rank")->capture_default_str();
  app->add_option("--lora-alpha", o.arm.lora.alpha, "arm: LoRA alpha (scaling alpha / r)")->capture_default_str();
  app->add_option("--lora-targets", f->lora_targets, "arm: comma-separated linears to adapt (q_proj ... down_proj)")
      ->capture_default_str();
  app->add_option("--steps", o.arm.steps, "arm: optimizer steps (0: --epochs passes)")->capture_default_str();
  app->add_option("--eval-every", o.arm.eval_every, "arm: steps between validations (0: once per epoch)")
      ->capture_default_str();
  app->add_option("--max-tokens", o.arm.max_tokens, "arm: prompt + response tokens per row (longer rows are cut)")
      ->capture_default_str();
  app->add_option("--seed", o.fit.seed, "Random seed")->capture_default_str();
  app->add_flag("--lora", f->o.bt_lora,
                "bt: also fine-tune a LoRA on the backbone with the head (the --lora-*, --steps and optimizer flags "
                "as for arm); merged into the written directory");
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f, epochs, lr, weight_decay, patience, batch] {
            auto& o = f->o;
            o.data = f->data;
            o.backbone = resolve_model_dir(f->backbone);
            o.out = f->out;
            o.feature_cache = f->cache;
            o.features = scoring::FeatureSpec::parse(f->features);
            o.objectives = f->objectives;
            o.progress = !f->no_progress;
            PALIGN_CHECK(!o.bt_lora || o.method == "bt", ErrorCode::kInvalidArgument,
                         "[cli.train.reward] --lora fine-tunes the backbone for --method bt only (arm always uses a "
                         "LoRA; the other heads train on frozen features)");
            if (o.method == "arm" || o.bt_lora) {
              if (epochs->count()) o.arm.epochs = o.fit.max_epochs;
              if (lr->count()) o.arm.lr = o.fit.lr;
              if (weight_decay->count()) o.arm.weight_decay = o.fit.weight_decay;
              if (patience->count()) o.arm.patience = o.fit.patience;
              if (batch->count()) o.arm.batch = o.fit.batch;
              o.arm.lora.target_modules = split_list(f->lora_targets);
            }
            const auto r = training::train_reward(o);
            json by_dimension = json::object();
            for (const auto& [dim, a] : r.by_dimension)
              by_dimension[dim] = {{"train_accuracy", finite_or_null(a.train_accuracy)},
                                   {"valid_accuracy", finite_or_null(a.valid_accuracy)},
                                   {"pairs", a.pairs}};
            json out{{"method", r.method},
                     {"out", o.out.string()},
                     {"pairs", r.n_pairs},
                     {"skipped_pairs", r.n_skipped},
                     {"users", r.n_users},
                     {"dimensions", r.dimensions},
                     {"train_accuracy", finite_or_null(r.train_accuracy)},
                     {"valid_accuracy", finite_or_null(r.valid_accuracy)},
                     {"feature_seconds", r.feature_seconds},
                     {"fit_seconds", r.fit_seconds},
                     {"fit_pairs_per_second", r.pairs_per_second}};
            if (!r.by_dimension.empty()) out["by_dimension"] = by_dimension;
            if (r.groups > 0) out["groups"] = r.groups, out["valid_loss_by_groups"] = r.valid_loss_by_groups;
            print_json_line(out.dump());
            return 0;
          }};
}

}  // namespace palign::cli
