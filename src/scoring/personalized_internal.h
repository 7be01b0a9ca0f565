// Private to the personalized reward heads (personalized_*.cpp): input checks, the new-user fit, and the save/load
// plumbing. Tensors here are float32 unless stated.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "palign/base/error.h"
#include "palign/runtime/safetensors.h"
#include "palign/scoring/personalized_reward.h"

namespace palign::scoring::detail {

// A new user's K pairs [K, D] (K may be 0; undefined tensors mean K = 0), identical ones dropped. Returns
// (chosen, rejected) float32. fn names the caller in messages ("scoring.prm.new_user_state").
std::pair<at::Tensor, at::Tensor> prepare_new_user(const at::Tensor& chosen, const at::Tensor& rejected, int64_t dim,
                                                   const char* fn);
// Features x [N, D] float32 for score(); state checked to be 1-D of size state_size.
at::Tensor prepare_features(const at::Tensor& x, int64_t dim, const at::Tensor& state, int64_t state_size,
                            const char* fn);
// The seen user's index checked against [0, n_users).
void check_user(int64_t user, int64_t n_users, const char* fn);

// Adam on a small set of parameters over a fixed full-batch loss (the new-user fits), deterministic.
void adapt(const std::vector<at::Tensor>& params, const std::function<at::Tensor()>& loss, int64_t steps, double lr);

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
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ", path.string(), " lacks a valid \"", key,
                 "\" field; it was not written by this version of palign");
  }
}

// Each reads its hyper-parameters from meta and its tensors from file; path (the JSON file) is named in messages.
std::unique_ptr<PersonalizedReward> load_prm(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_pal(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_vpl(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path);
std::unique_ptr<PersonalizedReward> load_linear(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path);

std::unique_ptr<PersonalizedReward> load_maxmin(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path);

}  // namespace palign::scoring::detail
