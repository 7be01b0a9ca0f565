// Preference optimization of the policy itself with a LoRA adapter over the frozen model (the DPO family):
//   dpo    Rafailov et al. 2023: d = β·((log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))), −log σ(d)
//   ipo    Azar et al. 2023: h = (log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r)), (h − 1/(2β))²
//   simpo  Meng et al. 2024: d = β·(log π(y_c)/|y_c| − log π(y_r)/|y_r|), −log σ(d − γ); no reference
//   pdpo   P-DPO, Li et al. 2024 ("Personalized Language Modeling from Personalized Human Feedback"): a
//          user-conditioned policy. Each user u seen in the data gets K learned input embeddings e_u = g + d_u (g the
//          generic user's, shared; d_u the user's own, starting at zero) put before the text as virtual tokens
//          (ForwardOptions::virtual_tokens). The adapter and the embeddings train together on every user's pairs with
//          dpo's loss, L = mean(w_i·ℓ_i) over the pairs with their user's tokens (w = 1) and the same pairs with the
//          generic user's tokens (w = alpha), so an unseen user is served by g alone. The reference is the model
//          without adapter or user tokens.
//   sft    supervised fine-tuning on the chosen (liked) responses: d = log π(y_c)/|y_c|, loss −d, the mean token
//          negative log-likelihood (OPPU-style per-user adapters: filter the records to one user); accuracies NaN
//   ric    Rewards-in-Context (Yang et al. 2024): sft on every response — chosen and rejected alike — with its K
//          rewards from a multi-objective reward (objectives) written before the prompt (scoring::reward_prompt); at
//          decoding time the scores asked for select the trade-off (--strategy ric). The manifest's "ric" keeps the
//          labels and each label's training-score quantiles (p10, p50, p90) that the strategy maps weights onto.
//   modpo  MODPO (Zhou et al. 2024): dpo for the objective k a pair is labelled by (its "dimension"), the other
//          objectives entering as a margin: d = (β / w_k)·h − (1 / w_k)·Σ_{j≠k} w_j (r_j(y_c) − r_j(y_r)), loss
//          −log σ(d), h dpo's log-ratio difference, r_j the objectives reward's scores and w the weights.
// log π(y) sums the response tokens' log-probs given the prompt; the reference is the model without the adapter,
// computed once per pair before training (no reference forward per step). Accuracy counts d > 0 (h > 0 for ipo).
//
// `palign train policy --method dpo|ipo|simpo` writes OUT as a PEFT adapter directory (adapter_config.json,
// adapter_model.safetensors) plus palign_policy.json {"format": "palign.policy", "version": 1, "method", "beta",
// "gamma", "model", "report": {...}}, so `palign generate --adapter OUT` and PEFT both load it. pdpo adds
// OUT/user_tokens.safetensors (runtime::UserTokens) and "user_tokens", "users", "alpha" in the manifest;
// `palign generate --adapter OUT --user ID` puts the user's tokens before the prompt (the generic user's for an
// unknown ID).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "palign/runtime/user_tokens.h"
#include "palign/scoring/preference_data.h"
#include "palign/training/pair_loop.h"

namespace palign::training {

enum class PolicyLoss { kDpo, kIpo, kSimpo, kPdpo, kSft, kRic, kModpo };
// "dpo", "ipo", "simpo", "pdpo", "sft", "ric", "modpo"; throws kInvalidArgument naming the known ones.
PolicyLoss policy_loss_from_name(const std::string& name);
std::string policy_loss_name(PolicyLoss loss);

// The per-pair implicit reward difference d (see the top) from summed log-probs [P] (float64), the reference's [P]
// (ignored by simpo and sft) and the responses' token counts [P] (used by simpo and sft). pdpo's is dpo's; sft reads
// the chosen side only (the rejected tensors may be undefined).
at::Tensor policy_difference(PolicyLoss loss, const at::Tensor& chosen_lp, const at::Tensor& rejected_lp,
                             const at::Tensor& ref_chosen_lp, const at::Tensor& ref_rejected_lp,
                             const at::Tensor& chosen_len, const at::Tensor& rejected_len, double beta);
// The per-pair loss of d: −log σ(d) (dpo, pdpo, modpo), (d − 1/(2β))² (ipo), −log σ(d − γ) (simpo), −d (sft, ric).
at::Tensor policy_pair_loss(PolicyLoss loss, const at::Tensor& d, double beta, double gamma);

// modpo's d (see the top) per pair: weight [P] w_k of the pair's own objective, margin [P] Σ_{j≠k} w_j Δr_j.
at::Tensor modpo_difference(const at::Tensor& chosen_lp, const at::Tensor& rejected_lp, const at::Tensor& ref_chosen_lp,
                            const at::Tensor& ref_rejected_lp, const at::Tensor& weight, const at::Tensor& margin,
                            double beta);

struct PolicyTrainOptions {
  PolicyLoss loss = PolicyLoss::kDpo;
  double gamma = 0.5;  // simpo's target margin
  // pdpo: tokens per user, the generic user's loss weight, the embeddings' AdamW learning rate.
  int64_t user_tokens = 4;
  double alpha = 0.5;
  double user_lr = 1e-2;
  // Only this user's records (their user_id); "" = every record. Not with pdpo, which learns every user at once.
  std::string user;
  // ric, modpo: a multi-objective reward directory (`palign train reward --method multi`) scoring every response.
  std::filesystem::path objectives;
  // modpo: the objectives' weights, name=w pairs (a label without one weighs 0); each pair's own dimension must weigh
  // more than 0.
  std::string weights;
  // The loop's options (PairTrainOptions): beta (dpo 0.1, ipo 0.1, simpo 2.0 are the papers' usual values), LoRA,
  // AdamW, batches, validation, early stopping, seed.
  PairTrainOptions fit;

  std::string validate() const;  // "" when valid
};

struct PolicyTrainReport {
  PairFitReport fit;
  int64_t n_pairs = 0, n_skipped = 0;  // n_skipped: identical chosen and rejected
  double reference_seconds = 0;        // computing the reference log-probs once
  double seconds = 0;
};

// The reference log-probs of every pair under model without an adapter ([P] each, float64), in batches (progress: a
// "reference" bar on stderr).
std::pair<at::Tensor, at::Tensor> reference_log_probs(const runtime::Model& model,
                                                      const std::vector<SequencePair>& pairs, int64_t batch,
                                                      bool progress = false);

// Trains adapter on pairs with the chosen loss (reference log-probs computed first, once; sft reads each pair's
// chosen only). Throws kInvalidArgument for invalid options, no pairs, or pdpo (fit_pdpo).
PairFitReport fit_policy_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                                 const std::vector<SequencePair>& pairs, const PolicyTrainOptions& options,
                                 double* reference_seconds = nullptr);

// MODPO: trains adapter on pairs with modpo's loss, pair i's own objective weighing weight[i] and the others' margin
// margin[i] (both [P] float64). Throws kInvalidArgument for invalid options, no pairs, or weights and margins of
// another count, non-positive weights or non-finite margins.
PairFitReport fit_modpo(const runtime::Model& model, runtime::LoraAdapter& adapter,
                        const std::vector<SequencePair>& pairs, const at::Tensor& weight, const at::Tensor& margin,
                        const PolicyTrainOptions& options, double* reference_seconds = nullptr);

// P-DPO: trains adapter and tokens together on pairs, pair i by user slot slots[i] (0: no user, only the generic
// copy). Throws kInvalidArgument for invalid options, no pairs, slots of the wrong count or out of range.
PairFitReport fit_pdpo(const runtime::Model& model, runtime::LoraAdapter& adapter, runtime::UserTokens& tokens,
                       const std::vector<SequencePair>& pairs, const std::vector<int64_t>& slots,
                       const PolicyTrainOptions& options, double* reference_seconds = nullptr);
// A sequence with the virtual ids of prefix before it (its response start moved past them).
scoring::ResponseSequence with_prefix(const scoring::ResponseSequence& s, const std::vector<int64_t>& prefix);

// modpo's per-record weight of its own objective and margin of the others (fit_modpo's inputs), the responses scored
// by options.objectives. Throws kInvalidArgument for a record whose dimension the objectives do not score or that
// weighs 0, and malformed weights; kNotFound for a missing reward directory.
std::pair<at::Tensor, at::Tensor> modpo_weights(const std::vector<const scoring::PreferenceRecord*>& records,
                                                const PolicyTrainOptions& options);

// ric's training rows: every chosen and rejected response of records as an sft record (chosen = the response) whose
// prompt is scoring::reward_prompt(prompt, labels, score(prompt, response)); quantiles: each label's p10, p50, p90 of
// those scores ({3}[K]). Throws kInvalidArgument for a score of the wrong size or not finite.
struct RicData {
  std::vector<scoring::PreferenceRecord> records;
  std::vector<std::vector<double>> quantiles;
};
RicData ric_records(
    const std::vector<scoring::PreferenceRecord>& records, const std::vector<std::string>& labels,
    const std::function<std::vector<double>(const std::string& prompt, const std::string& response)>& score);

// ric: the records' responses scored by options.objectives, written before their prompts, trained with sft by
// train_policy; the manifest gets "ric" (labels and score quantiles).
PolicyTrainReport train_ric(const std::vector<scoring::PreferenceRecord>& records,
                            const std::filesystem::path& model_dir, const std::filesystem::path& out,
                            const PolicyTrainOptions& options);

// Tokenizes records with the model's tokenizer, trains one adapter on all of them and writes out (see the top).
// Checkpoints go to options.fit.checkpoint_dir (default OUT/checkpoint): a run stopped at stop_at (or killed)
// continues from there when started again with the same data and options; a finished run removes it.
// Throws kInvalidArgument (no records, every pair identical, invalid options), kUnsupported (a model LoRA cannot
// adapt), kNotFound (no model), kIo.
PolicyTrainReport train_policy(const std::vector<scoring::PreferenceRecord>& records,
                               const std::filesystem::path& model_dir, const std::filesystem::path& out,
                               const PolicyTrainOptions& options);

}  // namespace palign::training
