// The bench's built-in methods (one file each in this folder) and helpers they share. Private to palign_bench.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "palign/bench/method.h"
#include "palign/runtime/lora.h"

namespace palign::bench {

std::unique_ptr<Method> make_random_method();
std::unique_ptr<Method> make_sample_method();
std::unique_ptr<Method> make_population_bt_method();
std::unique_ptr<Method> make_retrieval_method();
std::unique_ptr<Method> make_oracle_method();
std::unique_ptr<Method> make_population_oracle_method();
std::unique_ptr<Method> make_prm_method();
std::unique_ptr<Method> make_pal_method();
std::unique_ptr<Method> make_vpl_method();
std::unique_ptr<Method> make_multi_linear_method();
std::unique_ptr<Method> make_arm_linear_method();

std::unique_ptr<Method> make_steer_method();
std::unique_ptr<Method> make_prompt_method();
std::unique_ptr<Method> make_contrast_method();
std::unique_ptr<Method> make_args_method();
std::unique_ptr<Method> make_cd_block_method();
std::unique_ptr<Method> make_fusion_method();
std::unique_ptr<Method> make_proxy_method();

// What the decoding-time methods personalize with: multi_linear's user model — one linear Bradley–Terry head per
// named dimension on the backbone's features, and each user's weights over the standardised head scores (an unseen
// user's inferred from the pairs they bring, the population's without pairs).
class DimensionWeights {
 public:
  virtual ~DimensionWeights() = default;
  virtual void fit(const FitData& data, MethodContext& ctx) = 0;
  // [K] weights over FitData::dimensions; empty before a fit with pairs.
  virtual std::vector<double> weights(const UserData& user, MethodContext& ctx) = 0;
  // The user's reward of each response to prompt (features computed in one batch).
  virtual std::vector<double> rewards(const UserData& user, const std::string& prompt,
                                      const std::vector<std::string>& responses, MethodContext& ctx) = 0;
  // The reward as a linear map of the backbone's feature vector [mean ⊕ last] ([2·D] coefficients; the constant
  // dropped); empty before a fit with pairs.
  virtual std::vector<double> feature_coefficients(const UserData& user, MethodContext& ctx) = 0;
};
std::unique_ptr<DimensionWeights> make_dimension_weights();

// GenARM's autoregressive rewards: one LoRA adapter on the policy per named dimension, trained on that dimension's
// pairs (training::fit_arm_adapter); beta receives the reward scale β.
std::vector<runtime::LoraAdapter> fit_dimension_arms(const FitData& data, MethodContext& ctx, double* beta);

// Best-of-N over a prompt's pooled samples: the highest-scoring sample's text (the first on ties), charged with the
// whole pool's tokens and time, the batch's forward passes plus extra_passes (e.g. one batched scoring pass).
Response best_of_pool(const std::vector<Response>& pool, const std::function<double(const Response&)>& score,
                      int64_t extra_passes = 0);

}  // namespace palign::bench
