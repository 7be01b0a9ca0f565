// Reward models from preference data, on a frozen backbone's cached features (`palign train reward`). What it writes
// is loaded and scored by scoring::RewardModel (scoring/reward_model.h).
//
// Preference data is read by scoring::read_preference_jsonl (scoring/preference_data.h).
//
// Methods and what they write into the output directory:
//   bt     one scalar Bradley–Terry reward for everyone; multi: one head per "dimension" (K = the distinct dimensions,
//          sorted). Both are linear heads on the backbone's last-token hidden state and are written as a Hugging Face
//          *ForSequenceClassification directory (config.json with num_labels and id2label, model.safetensors with
//          the backbone's weights and score.weight [K, D], the tokenizer), so transformers and palign's runtime load
//          them alike.
//   prm, pal, vpl  personalized heads on pooled backbone features (options.features, written to the manifest's
//          "features"; training/reward_heads.h): reward_head.json + reward_head.safetensors.
//   linear per-user MAP weights over the K scores of a `multi` model (--objectives DIR), population prior.
//   maxmin MaxMin-RLHF's K Bradley–Terry heads by hard EM over users (K chosen on held-out pairs unless
//          fit.groups), on pooled features as prm: reward_head.json + reward_head.safetensors.
//   arm    GenARM's autoregressive reward (training/arm_trainer.h): one LoRA adapter on the backbone per "dimension",
//          trained end to end (no feature cache), in PEFT's directory layout.
// Every directory has palign_reward.json: {"format": "palign.reward", "version": 1, "method", "backbone",
// "backbone_fingerprint", "features", "users", "dimensions", "objectives", "report": {...}}.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "palign/scoring/feature_cache.h"
#include "palign/scoring/preference_data.h"
#include "palign/training/pair_loop.h"
#include "palign/training/reward_heads.h"

namespace palign::runtime {
class Model;
}

namespace palign::training {

struct RewardTrainOptions {
  std::string method = "bt";  // bt, multi, prm, pal, vpl, linear, arm, maxmin
  std::filesystem::path data, backbone, out;
  std::filesystem::path feature_cache;  // where backbone features persist ("" = memory only)
  std::filesystem::path objectives;     // linear: a `multi` reward directory on the same backbone
  // prm, pal, vpl: what their heads read (bt and multi read the final states' last token, as a
  // *ForSequenceClassification head does; linear reads those heads' scores).
  scoring::FeatureSpec features = scoring::FeatureSpec::recommended();
  RewardFitOptions fit;
  double l2 = -1;  // bt, multi: fixed L2 strength; < 0 picks it on the held-out pairs from {0.1, 1, 10, 100}
  bool progress = true;
  // arm: everything but valid_share, seed and progress, which come from fit and progress above.
  PairTrainOptions arm;
  // bt: also fine-tune a LoRA on the backbone with the head (arm's LoRA and optimizer settings); the adapter is merged
  // into the written classification directory and saved beside it in OUT/adapter.
  bool bt_lora = false;
  // Append new fields here.
};

struct RewardTrainReport {
  std::string method;
  int64_t n_pairs = 0, n_skipped = 0, n_users = 0;
  int64_t n_valid = 0;  // prm, pal, vpl, linear: the held-out pairs (whole prompts)
  std::vector<std::string> dimensions;
  double train_accuracy = 0, valid_accuracy = 0;  // bt/multi: mean over heads
  struct HeadAccuracy {
    double train_accuracy = 0, valid_accuracy = 0;  // valid: NaN without held-out pairs
    int64_t pairs = 0;
  };
  std::map<std::string, HeadAccuracy> by_dimension;  // multi: each head's own
  double feature_seconds = 0, fit_seconds = 0;
  double pairs_per_second = 0;               // fit only, features cached
  int64_t groups = 0;                        // maxmin: K
  std::vector<double> valid_loss_by_groups;  // maxmin: the held-out loss at K = 1, 2, ... (K chosen)
};

// Trains and writes out. Throws kInvalidArgument for an unknown method, data the method cannot use (no user_id for a
// personalized method, no dimension for multi, all pairs identical), or an objectives directory made on another
// backbone; kNotFound for missing files.
RewardTrainReport train_reward(const RewardTrainOptions& options);

// Writes a Hugging Face *ForSequenceClassification directory into out: the backbone's weights (without lm_head),
// score.weight [K, D] with labels, padded with the backbone's pad token (its first end-of-sequence token when it has
// none), and the tokenizer files of backbone_dir. What bt and multi write, and `palign train value`.
void write_classifier_directory(const std::filesystem::path& out, const runtime::Model& backbone,
                                const std::filesystem::path& backbone_dir, const at::Tensor& score_weight,
                                const std::vector<std::string>& labels);

}  // namespace palign::training
