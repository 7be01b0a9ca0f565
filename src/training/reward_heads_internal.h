// Private to the reward heads (reward_*.cpp): input validation, the held-out split, the shared AdamW loop with early
// stopping, and the save/load plumbing. Tensors here are float32 unless stated.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "palign/base/error.h"
#include "palign/runtime/safetensors.h"
#include "palign/training/reward_heads.h"

namespace palign::training::detail {

// Validated pairs: identical ones dropped; user int64 [N] (zeros when the caller gave none).
struct PairData {
  at::Tensor chosen, rejected, diff;  // [N, D]
  at::Tensor user;                    // [N] int64
  int64_t n_users = 0;
  int64_t skipped = 0;
};

// fn names the caller in messages ("training.prm.fit").
PairData prepare_pairs(const PreferencePairs& pairs, int64_t n_users, const char* fn);
// The start of every fit: the options validated (kInvalidArgument naming fn), then prepare_pairs.
PairData prepare_fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& options, const char* fn);
// A new user's K pairs [K, D] (K may be 0; undefined tensors mean K = 0), identical ones dropped. Returns
// (chosen, rejected) float32.
std::pair<at::Tensor, at::Tensor> prepare_new_user(const at::Tensor& chosen, const at::Tensor& rejected, int64_t dim,
                                                   const char* fn);
// Features x [N, D] float32 for score(); state checked to be 1-D of size state_size.
at::Tensor prepare_features(const at::Tensor& x, int64_t dim, const at::Tensor& state, int64_t state_size,
                            const char* fn);

// A seeded permutation of [0, n): (train, valid) int64 index tensors; valid is empty when valid_share · n < 1 or
// only one pair would be left for training.
std::pair<at::Tensor, at::Tensor> split_pairs(int64_t n, double valid_share, at::Generator& gen);

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

// Adam on a small set of parameters over a fixed full-batch loss (new_user_state's fits), deterministic.
void adapt(const std::vector<at::Tensor>& params, const std::function<at::Tensor()>& loss, int64_t steps, double lr);

at::Generator make_generator(uint64_t seed);

// A steady clock in seconds, for FitReport::seconds.
double now_seconds();

// Save/load: the JSON gets format, version, method, dim, n_users added.
void write_reward_head(const std::filesystem::path& dir, const std::string& method, int64_t dim, int64_t n_users,
                       nlohmann::json hyper, const std::vector<std::pair<std::string, at::Tensor>>& tensors);
// A float32 copy of a stored tensor, checked against shape (kInvalidArgument otherwise).
at::Tensor load_tensor(const runtime::SafetensorsFile& file, const std::string& name,
                       const std::vector<int64_t>& shape);
// A required JSON field (kInvalidArgument naming the file when missing or of the wrong type).
template <typename T>
T json_field(const nlohmann::json& j, const std::string& key, const std::filesystem::path& path) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward_head.load] ", path.string(), " lacks a valid \"", key,
                 "\" field; it was not written by this version of palign");
  }
}

std::unique_ptr<PersonalizedReward> make_prm();
std::unique_ptr<PersonalizedReward> make_pal();
std::unique_ptr<PersonalizedReward> make_vpl();
std::unique_ptr<PersonalizedReward> make_linear();
// Each reads its hyper-parameters from meta and its tensors from file; path (the JSON file) is named in messages.
std::unique_ptr<PersonalizedReward> load_prm(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_pal(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_vpl(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_linear(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path);

}  // namespace palign::training::detail
