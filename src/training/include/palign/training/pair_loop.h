// The generic pairwise training loop: a LoRA adapter (and/or extra parameters) trained on token pairs with any
// pairwise objective — GenARM's Bradley–Terry reward (arm_trainer.h), DPO, IPO, SimPO, P-DPO and sft
// (policy_trainer.h), BiPO's steering vector (steering_trainer.h). AdamW, seeded batches, validation with early
// stopping, and checkpoints that let an interrupted fit resume where it stopped.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "palign/runtime/lora.h"
#include "palign/training/pair_types.h"

namespace palign::runtime {
class Model;
}  // namespace palign::runtime

namespace palign::training {

struct PairTrainOptions {
  double beta = 1.0;  // the objective's scale β (arm_objective and the DPO family read it; the loop does not)
  // GenARM adapts attention and MLP; the default adapts every attention projection.
  runtime::LoraConfig lora{.r = 8,
                           .alpha = 16,
                           .dropout = 0,
                           .target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"},
                           .use_rslora = false,
                           .base_model = {}};
  double lr = 5e-4;           // AdamW on the LoRA parameters only
  double weight_decay = 0;    // AdamW decoupled weight decay
  int64_t epochs = 3;         // most passes over the training pairs
  int64_t steps = 0;          // > 0: exactly this many optimizer steps (epochs then do not limit)
  int64_t batch = 8;          // pairs per step (2·batch right-padded rows in one forward pass)
  double valid_share = 0.2;   // of the pairs, held out for early stopping and the reported accuracy
  int64_t eval_every = 0;     // steps between validations; 0 = once per epoch (and at the end)
  int64_t patience = 3;       // validations without a lower validation loss before stopping (the best is kept)
  int64_t max_tokens = 1024;  // prompt + response tokens per row (at most the backbone's max_position); longer rows
                              // lose their end
  uint64_t seed = 0;          // the adapter's initialisation, the held-out split, the batch order
  bool progress = false;
  // Checkpoints (fit_pair_adapter): every checkpoint_every steps (and when stopping at stop_at) the adapter, the best
  // one so far, AdamW's state and the loop's position are written atomically to checkpoint_dir; a fit that finds a
  // checkpoint there continues from it and ends where an uninterrupted fit would have. Empty dir: no checkpoints.
  std::filesystem::path checkpoint_dir;
  int64_t checkpoint_every = 100;
  int64_t stop_at = 0;  // stop (with a checkpoint) after this many steps of the schedule; 0 = run to the end

  std::string validate() const;  // "" when valid
};

struct PairFitReport {
  int64_t epochs = 0, steps = 0;  // epochs begun, optimizer steps taken (counting those before a resume)
  int64_t resumed_at = 0;         // the step a checkpoint let the fit continue from (0: a fresh fit)
  bool stopped = false;           // stopped at stop_at, leaving a checkpoint
  int64_t n_train = 0, n_valid = 0;
  double train_accuracy = 0, valid_accuracy = 0;  // ties count one half; valid_accuracy NaN without held-out pairs
  double train_loss = 0, valid_loss = 0;          // valid_loss NaN without held-out pairs
  double seconds = 0;                             // the whole fit, validations included
  int64_t trained_pairs = 0;    // pairs through forward + backward (steps · batch, short last batches counted)
  double train_seconds = 0;     // time in those steps
  double pairs_per_second = 0;  // trained_pairs / train_seconds
};

// What a pairwise objective makes of the summed response log-probs of a batch of pairs (idx: the batch's indices
// into the pairs): the implicit reward difference d of each pair (accuracy counts d > 0, ties one half) and the
// per-pair loss of d. GenARM: d = β·(chosen − rejected), loss −log σ(d); the DPO family (policy_trainer.h) adds
// reference log-probs, lengths and margins.
struct PairObjective {
  std::string name = "arm";  // the progress bar's label and the messages' prefix
  std::function<at::Tensor(const at::Tensor& chosen_lp, const at::Tensor& rejected_lp, const std::vector<int64_t>& idx)>
      difference;
  std::function<at::Tensor(const at::Tensor& d)> loss;
  // Optional parts (defaults: a plain pairwise objective over the adapter alone).
  bool single = false;       // items are single sequences, each pair's chosen (rejected unused): difference then
                             // gets an undefined rejected_lp (e.g. sft's likelihood)
  bool has_accuracy = true;  // false: the reports' accuracies are NaN (d > 0 means nothing, e.g. sft)
  at::Tensor pair_weights;   // [P] float64: pair i's loss counts pair_weights[i] in the batch mean (undefined: 1)
  // Trained together with the adapter (e.g. P-DPO's user embeddings), checkpointed and kept at the best validation
  // loss with it; AdamW at extra_lr (0: the adapter's lr).
  std::vector<at::Tensor> extra_parameters;
  double extra_lr = 0;
  // The virtual-token table of every forward (ids >= V in the sequences), rebuilt from extra_parameters each step.
  std::function<at::Tensor()> virtual_tokens;
  // Changes the residual stream of every forward (e.g. a steering vector in extra_parameters; BiPO).
  std::function<void(int64_t layer, at::Tensor& residual)> residual_hook;
  // Variants of the objective (e.g. BiPO's two steering directions): each training step draws one (seeded) and calls
  // set_variant(i) before its forward; validation and the final figures average over every variant.
  int64_t n_variants = 1;
  std::function<void(int64_t variant)> set_variant;
};
// Trains adapter (its A and B in place; the model stays frozen) on pairs: AdamW, seeded batches, validation on a
// seeded valid_share of the pairs (none under 5 pairs) with early stopping, the adapter with the lowest validation
// loss kept (the last one without held-out pairs). Throws kInvalidArgument for invalid options or no pairs.
PairFitReport fit_pair_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                               const std::vector<SequencePair>& pairs, const PairTrainOptions& options,
                               const PairObjective& objective);
// The loop without an adapter: only objective.extra_parameters train (at options.lr unless extra_lr is set;
// options.lora is unused). Throws kInvalidArgument also when the objective has no extra parameters.
PairFitReport fit_pair_parameters(const runtime::Model& model, const std::vector<SequencePair>& pairs,
                                  const PairTrainOptions& options, const PairObjective& objective);

}  // namespace palign::training
