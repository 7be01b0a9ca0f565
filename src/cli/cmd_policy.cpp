// palign train policy: the DPO family (dpo, ipo, simpo), P-DPO's user-conditioned policy (pdpo) and SFT on liked
// responses (sft), each a LoRA adapter of the policy (training/policy_trainer.h); palign train corrector: an
// Aligner / MetaAligner corrector adapter (training/corrector_trainer.h).
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/strings.h"
#include "palign/scoring/preference_data.h"
#include "palign/training/corrector_trainer.h"
#include "palign/training/policy_trainer.h"

namespace palign::cli {

namespace {

struct Flags {
  std::string method = "dpo", data, model, out;
  std::string lora_targets = "q_proj,k_proj,v_proj,o_proj";
  double beta = -1;
  bool no_progress = false;
  bool objectives = false;  // train corrector
  training::PolicyTrainOptions o;
};

// The adapter fit's flags, shared by train policy and train corrector.
void add_fit_flags(CLI::App* app, Flags& f) {
  auto& o = f.o;
  app->add_option("--data", f.data, "Preference pairs, JSON Lines {prompt, chosen, rejected}")->required();
  app->add_option("--model", f.model, "The policy model directory (default: the shipped model)");
  app->add_option("--out", f.out, "Output adapter directory (PEFT layout)")->required();
  app->add_option("--user", o.user, "Train on this user's records only (their \"user_id\"): a per-user adapter")
      ->capture_default_str();
  app->add_option("--lora-r", o.fit.lora.r, "LoRA rank")->capture_default_str();
  app->add_option("--lora-alpha", o.fit.lora.alpha, "LoRA alpha (scaling alpha / r)")->capture_default_str();
  app->add_option("--lora-targets", f.lora_targets, "Comma-separated linears to adapt (q_proj ... down_proj)")
      ->capture_default_str();
  app->add_option("--lr", o.fit.lr, "AdamW learning rate")->capture_default_str();
  app->add_option("--weight-decay", o.fit.weight_decay, "AdamW weight decay")->capture_default_str();
  app->add_option("--epochs", o.fit.epochs, "Most passes over the training pairs")->capture_default_str();
  app->add_option("--steps", o.fit.steps, "Exactly this many optimizer steps (0: --epochs passes)")
      ->capture_default_str();
  app->add_option("--batch", o.fit.batch, "Pairs per step")->capture_default_str();
  app->add_option("--valid-share", o.fit.valid_share, "Share of pairs held out for validation and early stopping")
      ->capture_default_str();
  app->add_option("--eval-every", o.fit.eval_every, "Steps between validations (0: once per epoch)")
      ->capture_default_str();
  app->add_option("--patience", o.fit.patience, "Validations without improvement before stopping")
      ->capture_default_str();
  app->add_option("--max-tokens", o.fit.max_tokens, "Prompt + response tokens per row (longer rows are cut)")
      ->capture_default_str();
  app->add_option("--seed", o.fit.seed, "Random seed (adapter init, split, batch order)")->capture_default_str();
  app->add_option("--checkpoint-every", o.fit.checkpoint_every,
                  "Steps between checkpoints in OUT/checkpoint (a rerun resumes from it)")
      ->capture_default_str();
  app->add_option("--stop-at", o.fit.stop_at, "Stop (with a checkpoint) after this many steps; 0 = run to the end")
      ->capture_default_str();
  app->add_flag("--no-progress", f.no_progress, "No progress bar");
}

void print_report(const Flags& f, const training::PolicyTrainReport& report) {
  nlohmann::json out{{"out", f.out},
                     {"method", f.method},
                     {"beta", f.o.fit.beta},
                     {"pairs", report.n_pairs},
                     {"skipped", report.n_skipped},
                     {"steps", report.fit.steps},
                     {"stopped", report.fit.stopped},
                     {"resumed_at", report.fit.resumed_at},
                     {"train_accuracy", finite_or_null(report.fit.train_accuracy)},
                     {"valid_accuracy", finite_or_null(report.fit.valid_accuracy)},
                     {"train_loss", finite_or_null(report.fit.train_loss)},
                     {"valid_loss", finite_or_null(report.fit.valid_loss)},
                     {"pairs_per_second", finite_or_null(report.fit.pairs_per_second)},
                     {"reference_seconds", report.reference_seconds},
                     {"seconds", report.seconds}};
  if (f.method == "corrector") out.erase("beta"), out["objectives"] = f.objectives;  // sft has no beta
  print_json_line(out.dump());
}

}  // namespace

Command add_train_policy(CLI::App& train) {
  auto f = std::make_shared<Flags>();
  CLI::App* app = train.add_subcommand(
      "policy",
      "Train the policy with a LoRA adapter: DPO, IPO, SimPO (reference log-probs once), P-DPO (learned user tokens), "
      "SFT on the liked responses, Rewards-in-Context (ric) or multi-objective DPO (modpo)");
  auto& o = f->o;
  app->add_option("--method", f->method, "dpo, ipo, simpo, pdpo, sft, ric or modpo")
      ->check(CLI::IsMember({"dpo", "ipo", "simpo", "pdpo", "sft", "ric", "modpo"}))
      ->capture_default_str();
  app->add_option("--beta", f->beta, "β (default: dpo 0.1, ipo 0.1, simpo 2.0)")->check(finite_above(0, false));
  app->add_option("--gamma", o.gamma, "simpo: target reward margin γ")->capture_default_str();
  app->add_option("--user-tokens", o.user_tokens, "pdpo: learned tokens per user")->capture_default_str();
  app->add_option("--alpha", o.alpha, "pdpo: weight of the generic user's loss")->capture_default_str();
  app->add_option("--user-lr", o.user_lr, "pdpo: AdamW learning rate of the user tokens")->capture_default_str();
  app->add_option(
      "--objectives", o.objectives,
      "ric, modpo: a multi-objective reward directory (train reward --method multi) scoring every response");
  app->add_option("--weights", o.weights,
                  "modpo: name=w pairs over the objectives' labels (each pair's own \"dimension\" must weigh > 0)");
  add_fit_flags(app, *f);
  return {app, [f] {
            auto& o = f->o;
            o.loss = training::policy_loss_from_name(f->method);
            o.fit.beta = f->beta >= 0 ? f->beta : (o.loss == training::PolicyLoss::kSimpo ? 2.0 : 0.1);
            o.fit.lora.target_modules = split_list(f->lora_targets);
            o.fit.progress = !f->no_progress;
            print_report(*f, training::train_policy(scoring::read_preference_jsonl(f->data),
                                                    resolve_model_dir(f->model), f->out, o));
            return 0;
          }};
}

Command add_train_corrector(CLI::App& train) {
  auto f = std::make_shared<Flags>();
  f->method = "corrector";
  CLI::App* app = train.add_subcommand(
      "corrector",
      "Train a corrector for --strategy correct: SFT of a LoRA adapter that reads a question and the rejected answer "
      "and writes the chosen one (Aligner); with --objectives, told the pair's dimension in words (MetaAligner)");
  app->add_flag("--objectives", f->objectives,
                "Condition on each pair's \"dimension\" (MetaAligner), so that generation can name what to correct "
                "toward");
  add_fit_flags(app, *f);
  return {app, [f] {
            auto& o = f->o;
            o.fit.beta = 1.0;  // unused by sft
            o.fit.lora.target_modules = split_list(f->lora_targets);
            o.fit.progress = !f->no_progress;
            print_report(*f, training::train_corrector(scoring::read_preference_jsonl(f->data),
                                                       resolve_model_dir(f->model), f->out, o, f->objectives));
            return 0;
          }};
}

}  // namespace palign::cli
