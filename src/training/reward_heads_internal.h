// Private to the reward heads' fits (fit_*.cpp): input validation, the held-out split and the shared AdamW loop with
// early stopping. Tensors here are float32 unless stated.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "palign/base/error.h"
#include "palign/training/reward_heads.h"

namespace palign::training::detail {

// Validated pairs: identical ones dropped; user int64 [N] (zeros when the caller gave none).
struct PairData {
  at::Tensor chosen, rejected, diff;  // [N, D]
  at::Tensor user;                    // [N] int64
  std::vector<int64_t> group;         // [N] or empty (PreferencePairs::group)
  int64_t n_users = 0;
  int64_t skipped = 0;
};

// fn names the caller in messages ("training.prm.fit").
PairData prepare_pairs(const PreferencePairs& pairs, int64_t n_users, const char* fn);
// The start of every fit: the options validated (kInvalidArgument naming fn), then prepare_pairs.
PairData prepare_fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& options, const char* fn);
// A seeded permutation of [0, n): (train, valid) int64 index tensors; valid is empty when valid_share · n < 1 or
// only one pair would be left for training. With groups (one per pair), valid is whole groups drawn in a seeded
// order until it holds at least valid_share · n pairs.
std::pair<at::Tensor, at::Tensor> split_pairs(int64_t n, double valid_share, at::Generator& gen,
                                              const std::vector<int64_t>& group = {});

// Accuracy of margins r_c − r_r [N] (ties count ½) and mean −log σ(margin).
double bt_accuracy(const at::Tensor& margin);
double bt_nll(const at::Tensor& margin);

// The shared AdamW loop: epochs over a seeded permutation of n_items training items in steps of items_per_step;
// after each epoch valid() (under no-grad) gives (loss, accuracy) of the held-out pairs, and the parameters with the
// lowest loss are kept; `patience` epochs without improvement stop it. Without valid (an empty function) it runs
// max_epochs and keeps the last parameters. Returns the epochs run.
struct TrainLoop {
  int64_t n_items = 0;
  int64_t items_per_step = 1;
  std::function<at::Tensor(const at::Tensor& items)> loss;  // items: int64 positions into the training items
  std::function<std::pair<double, double>()> valid;
};
// Weight decay applies to params, not to no_decay.
int64_t run_training(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& no_decay,
                     const RewardFitOptions& o, const TrainLoop& loop, at::Generator& gen, const std::string& label);

at::Generator make_generator(uint64_t seed);

// The methods' fits on prepared pairs (options validated).
FittedReward fit_prm(const PairData& data, const RewardFitOptions& options);
FittedReward fit_pal(const PairData& data, const RewardFitOptions& options);
FittedReward fit_vpl(const PairData& data, const RewardFitOptions& options);
FittedReward fit_linear(const PairData& data, const RewardFitOptions& options);
FittedReward fit_maxmin(const PairData& data, const RewardFitOptions& options);

}  // namespace palign::training::detail
