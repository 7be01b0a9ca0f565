// GenARM's autoregressive reward model (Xu et al. 2024, "GenARM: Reward Guided Generation with Autoregressive Reward
// Model for Test-time Alignment"): a causal LM π_r — here the frozen backbone plus a LoRA adapter — whose reward of a
// response is a sum of per-token terms,
//   r(x, y) = β · Σ_t log π_r(y_t | x, y_<t),
// trained with the Bradley–Terry loss −log σ(r(x, y_c) − r(x, y_r)), mean over pairs. Because r decomposes over
// tokens, decoding can fuse π_r's next-token log-probs with the base model's (the fusion strategy).
//
// `palign train reward --method arm` writes one adapter per "dimension" of the data (sorted; one for all when the
// records have none):
//   OUT/palign_reward.json   {"format": "palign.reward", "version": 1, "method": "arm", "backbone", "dimensions",
//                             "beta", "report": {...}}
//   OUT[/<dimension>]/       adapter_config.json + adapter_model.safetensors (PEFT's layout, LoraAdapter::save) and
//                             arm.json {"format": "palign.arm", "version": 1, "beta", "dimension", "backbone",
//                             "train_accuracy", "valid_accuracy", "epochs"}
//
// The pairwise loop it trains with is shared with the DPO family and BiPO (pair_loop.h). An arm directory is scored
// by scoring::RewardModel.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "palign/scoring/preference_data.h"
#include "palign/training/pair_loop.h"

namespace palign::training {

// Bradley–Terry loss on summed log-probs: mean over pairs of −log σ(β·(chosen − rejected)) (a scalar).
at::Tensor arm_bt_loss(const at::Tensor& chosen_log_probs, const at::Tensor& rejected_log_probs, double beta);

// GenARM's objective for the pair loop: d = β·(chosen − rejected), loss −log σ(d).
PairObjective arm_objective(double beta);

// fit_pair_adapter with arm_objective(options.beta).
PairFitReport fit_arm_adapter(const runtime::Model& model, runtime::LoraAdapter& adapter,
                              const std::vector<SequencePair>& pairs, const PairTrainOptions& options);

struct ArmTrainReport {
  std::vector<std::string> dimensions;            // empty when the records have none (one adapter in out)
  std::vector<PairFitReport> fits;                // one per adapter, in dimensions' order
  int64_t n_pairs = 0, n_skipped = 0;             // n_skipped: identical chosen and rejected
  double train_accuracy = 0, valid_accuracy = 0;  // means over adapters
  double seconds = 0, pairs_per_second = 0;
};

// Tokenizes records with the backbone's tokenizer, trains one adapter per distinct dimension (sorted; one for all
// when no record has a dimension) and writes out as described at the top. Pairs with identical chosen and rejected
// texts are skipped. Throws kInvalidArgument (no records, every pair identical, some records with a dimension and
// some without, invalid options), kUnsupported (a backbone LoRA cannot adapt, e.g. GPT-2), kNotFound (no backbone),
// kIo.
ArmTrainReport train_arm(const std::vector<scoring::PreferenceRecord>& records, const std::filesystem::path& backbone,
                         const std::filesystem::path& out, const PairTrainOptions& options);

}  // namespace palign::training
