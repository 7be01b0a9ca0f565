// BiPO steering vectors (Cao et al. 2024, "Personalized Steering of Large Language Models: Versatile Steering
// Vectors Through Bi-directional Preference Optimization"): a vector v added to one decoder layer's residual stream
// at every position, trained so that the steered model prefers the chosen response and the oppositely steered model
// the rejected one:
//   loss = −log σ(d · β · ([log π_{+dv}(y_c) − log π(y_c)] − [log π_{+dv}(y_r) − log π(y_r)])),  d = ±1 per batch,
// π the frozen model, log π summed over the response tokens (reference log-probs computed once). The result goes into
// a steering-vector file (scoring/steering_vectors.h) for `palign generate --strategy steer`. train_steering makes
// one vector per preference dimension of a pair set, by mean difference or BiPO: what `palign train steer` runs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "palign/scoring/preference_data.h"
#include "palign/scoring/steering_vectors.h"
#include "palign/training/pair_loop.h"

namespace palign::training {

struct BipoOptions {
  int64_t layer = 0;
  double beta = 0.1;
  double lr = 5e-3;  // AdamW on the vector
  int64_t epochs = 5;
  int64_t batch = 8;
  double valid_share = 0.2;  // held out: the loss over both directions, early stopping, the best vector kept
  int64_t patience = 3;      // validations (once per epoch) without a lower validation loss before stopping
  uint64_t seed = 0;         // the split, batch order and the directions d
  bool progress = false;
  // Checkpoints as the pair loop's (PairTrainOptions): the vector, the best one, AdamW's state and the position.
  std::filesystem::path checkpoint_dir;
  int64_t checkpoint_every = 100;
  int64_t stop_at = 0;

  std::string validate() const;  // "" when valid
};

// The pair loop's report (arm_trainer.h): losses and accuracies average both directions (accuracy: the +v model
// prefers the chosen response, the −v model the rejected one). A zero vector has loss log 2.
using BipoReport = PairFitReport;

// The BiPO loss of one batch for direction d (+1 or −1); differentiable in v. Exposed for tests.
at::Tensor bipo_loss(const runtime::Model& model, const std::vector<SequencePair>& pairs, const at::Tensor& ref_chosen,
                     const at::Tensor& ref_rejected, const at::Tensor& v, int64_t layer, double direction, double beta);

// Trains a vector [D] (starting at zero) on pairs with the pair loop (fit_pair_parameters): a seeded direction per
// batch, validation over both directions. Throws kInvalidArgument for invalid options, no pairs, a layer outside the
// model.
at::Tensor train_bipo_vector(const runtime::Model& model, const std::vector<SequencePair>& pairs,
                             const BipoOptions& options, BipoReport* report = nullptr);

// One vector per "dimension" of the pairs, at one layer.
struct SteeringTrainOptions {
  std::string method = "mean_diff";  // or "bipo"
  int64_t layer = -1;                // the decoder layer whose output is steered; -1: the middle one
  int64_t max_tokens = 128;          // prompt + response tokens per row (longer rows are cut; capped by the context)
  BipoOptions bipo;                  // bipo: every option but layer, progress and checkpoint_dir
  std::filesystem::path checkpoint_root;  // bipo: each dimension checkpoints in checkpoint_root / DIMENSION
  bool progress = false;
};

struct SteeringDimensionReport {
  std::string name;
  int64_t pairs = 0;  // the pairs used (after the --max-tokens cut)
  double norm = 0;
  std::optional<BipoReport> bipo;
};

struct SteeringTrainResult {
  std::vector<scoring::SteeringVector> vectors;
  std::vector<SteeringDimensionReport> dimensions;  // in the vectors' order
  int64_t layer = 0;
  bool stopped = false;  // bipo: a dimension stopped at bipo.stop_at, leaving a checkpoint
};

// Throws kInvalidArgument for an unknown method, a layer outside the model, max_tokens < 2, a pair without a
// dimension, or a dimension none of whose pairs fits in max_tokens.
SteeringTrainResult train_steering(const runtime::Model& model, const runtime::Tokenizer& tokenizer,
                                   const std::vector<scoring::PreferenceRecord>& records,
                                   const SteeringTrainOptions& options);

}  // namespace palign::training
