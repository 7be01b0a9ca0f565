// Reward models at serving time: every directory `palign train reward` writes, and any Hugging Face
// *ForSequenceClassification directory, loaded and scored through one interface.
//
// What each method's directory holds (training/reward_trainer.h writes them):
//   bt, multi     a *ForSequenceClassification directory (config.json with num_labels and id2label,
//                 model.safetensors with the backbone's weights and score.weight [K, D], the tokenizer).
//   prm, pal, vpl a personalized head on pooled backbone features (the manifest's "features", a FeatureSpec;
//                 scoring/personalized_reward.h) with input_norm.safetensors (the features' standardisation).
//   linear        the same over the K scores of a `multi` model (its directory in the manifest's "objectives").
//   arm           GenARM's autoregressive reward: one LoRA adapter per dimension (PEFT's layout) and arm.json.
// Every directory has palign_reward.json: {"format": "palign.reward", "version": 1, "method", "backbone",
// "backbone_fingerprint", "features", "users", "dimensions", "objectives", "report": {...}}.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "palign/scoring/feature_cache.h"
#include "palign/scoring/preference_data.h"

namespace palign::scoring {

inline constexpr const char* kRewardManifest = "palign_reward.json";
inline constexpr const char* kRewardInputNorm = "input_norm.safetensors";
inline constexpr const char* kArmAdapterJson = "arm.json";  // beside each adapter of an arm directory

class RewardModel {
 public:
  // Any directory train_reward wrote, or any Hugging Face *ForSequenceClassification directory (e.g. a downloaded
  // reward model: then it scores through the runtime's forward pass alone). Throws kNotFound for a missing directory
  // or file, kInvalidArgument for a malformed one or one trained on another backbone.
  static std::unique_ptr<RewardModel> load(const std::filesystem::path& dir);
  virtual ~RewardModel() = default;
  virtual std::string method() const = 0;
  // Names of the scores (num_labels of a classification directory; the dimensions of an arm directory; one
  // "reward" otherwise).
  virtual std::vector<std::string> labels() const = 0;
  virtual bool personalized() const = 0;
  // Users seen in training (personalized models).
  virtual std::vector<std::string> users() const = 0;
  // Scores of a response. user: a seen user's id, or "" for the generic user; user_pairs: an unseen user's labelled
  // pairs (used when user is ""). Throws kNotFound for a user the model has not seen, naming what to pass instead.
  virtual std::vector<double> score(const std::string& prompt, const std::string& response,
                                    const std::string& user = "",
                                    const std::vector<PreferenceRecord>& user_pairs = {}) = 0;
  // Scores of raw token ids (classification directories only; kUnsupported otherwise).
  virtual std::vector<double> score_ids(const std::vector<int64_t>& ids) = 0;

  // A reward that is a weighted sum of a classification directory's scores (linear, over its objectives): that
  // directory and the user's (user, user_pairs as in score) weights over its labels, so that score() = Σ_k
  // weights[k] · s_k + a constant of the user. nullopt for every other reward.
  struct LabelWeights {
    std::filesystem::path classifier;
    std::vector<double> weights;
  };
  virtual std::optional<LabelWeights> label_weights(const std::string& user,
                                                    const std::vector<PreferenceRecord>& user_pairs) {
    (void)user, (void)user_pairs;
    return std::nullopt;
  }
};

// ---- The directories' parts, shared with the trainer.

// prm, pal, vpl and linear learn each user's preferences.
bool is_personalized_method(const std::string& method);

// The score.weight [K, D] and labels of a `multi` (or `bt`) directory, checked to be on the backbone with the given
// fingerprint (runtime::model_fingerprint). Throws kInvalidArgument for another method or backbone.
struct RewardObjectives {
  at::Tensor weight;
  std::vector<std::string> labels;
  std::filesystem::path dir;
};
RewardObjectives load_objectives(const std::filesystem::path& dir, const std::string& backbone_fingerprint);

// A dimension names a subdirectory of an arm directory, so it must be one plain path component.
bool is_plain_directory_name(const std::string& name);

// The features a personalized directory's head reads (its manifest's "features", a FeatureSpec's text; the default
// [mean ⊕ last] for a directory written before specs existed; linear: the classifier spec of its objectives).
FeatureSpec reward_features(const nlohmann::json& manifest);

// An arm directory as a RewardModel: score(prompt, response) = β · Σ log π_r(response | prompt) for each dimension.
std::unique_ptr<RewardModel> load_arm_reward(const std::filesystem::path& dir);

}  // namespace palign::scoring
