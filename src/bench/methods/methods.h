// The bench's built-in methods (one file each in this folder) and helpers they share. Private to palign_bench.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "palign/bench/method.h"
#include "palign/bench/rng.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/lora.h"
#include "palign/training/linear_bt.h"
#include "palign/users/dimension_weights.h"

namespace palign::bench {

std::unique_ptr<Method> make_random_method();
std::unique_ptr<Method> make_sample_method();
std::unique_ptr<Method> make_population_bt_method();
std::unique_ptr<Method> make_retrieval_method();
std::unique_ptr<Method> make_oracle_method();
std::unique_ptr<Method> make_population_oracle_method();
std::unique_ptr<Method> make_prm_method();
std::unique_ptr<Method> make_pal_method();
std::unique_ptr<Method> make_pal_signed_method();
std::unique_ptr<Method> make_vpl_method();
std::unique_ptr<Method> make_maxmin_method();
std::unique_ptr<Method> make_maxmin_egalitarian_method();
std::unique_ptr<Method> make_multi_linear_method();
std::unique_ptr<Method> make_oracle_features_method();
std::unique_ptr<Method> make_arm_linear_method();
std::unique_ptr<Method> make_online_method();
std::unique_ptr<Method> make_active_method();
std::unique_ptr<Method> make_online_true_method();
std::unique_ptr<Method> make_active_true_method();

std::unique_ptr<Method> make_steer_method();
std::unique_ptr<Method> make_steer_bipo_method();
std::unique_ptr<Method> make_prompt_method();
std::unique_ptr<Method> make_contrast_method();
std::unique_ptr<Method> make_multi_linear_xfit_method();
std::unique_ptr<Method> make_args_method();
std::unique_ptr<Method> make_args_greedy_method();
std::unique_ptr<Method> make_greedy_method();
std::unique_ptr<Method> make_cd_block_method();
std::unique_ptr<Method> make_cards_method();
std::unique_ptr<Method> make_value_method();
std::unique_ptr<Method> make_correct_method();
std::unique_ptr<Method> make_ric_method();
std::unique_ptr<Method> make_fusion_method();
std::unique_ptr<Method> make_proxy_method();
std::unique_ptr<Method> make_soups_method();
std::unique_ptr<Method> make_modpo_method();
std::unique_ptr<Method> make_mod_method();
std::unique_ptr<Method> make_pdpo_method();
std::unique_ptr<Method> make_dpo_user_method();
std::unique_ptr<Method> make_ipo_user_method();
std::unique_ptr<Method> make_simpo_user_method();
std::unique_ptr<Method> make_sft_user_method();

// What the decoding-time methods personalize with: multi_linear's user model — one linear Bradley–Terry head per
// named dimension on the backbone's features, and each user's weights over the standardised head scores (an unseen
// user's inferred from the pairs they bring, the population's without pairs).
class DimensionWeights {
 public:
  virtual ~DimensionWeights() = default;
  virtual void fit(const FitData& data, MethodContext& ctx) = 0;
  // The user's weights over FitData::dimensions with their uncertainty: the mean the strategies personalize with (the
  // linear reward's user state: the MAP under the population prior) and the Laplace covariance at it given the
  // user's pairs. names only (mean and covariance empty) before a fit with pairs.
  virtual users::DimensionWeights weights(const UserData& user, MethodContext& ctx) = 0;
  // The user's pairs as per-dimension differences of the standardised head scores (chosen − rejected): what the
  // weights are fitted on, and what an online update of them takes. Empty before a fit with pairs.
  virtual std::vector<std::vector<double>> differences(const UserData& user, MethodContext& ctx) = 0;
  // The user's reward of each response to prompt (features computed in one batch).
  virtual std::vector<double> rewards(const UserData& user, const std::string& prompt,
                                      const std::vector<std::string>& responses, MethodContext& ctx) = 0;
  // The reward as a linear map of the backbone feature vector it reads (one coefficient per feature; the constant
  // dropped); empty before a fit with pairs.
  virtual std::vector<double> feature_coefficients(const UserData& user, MethodContext& ctx) = 0;
};
std::unique_ptr<DimensionWeights> make_dimension_weights();
// The same user model on the last token's final state alone (scoring::FeatureSpec::classifier(): what a
// sequence-classification head reads); the Method is also a DimensionWeights. ARGS's reward.
std::unique_ptr<Method> make_last_token_linear_method();

// A method that personalizes with the shared DimensionWeights user model (fitted once per budget for every such
// method of the run): the decoding-time strategies (decoding.cpp) and the trained policies (policy.cpp). It only
// generates; a subclass overrides generate_batch to serve every user of a prompt at once, or generate.
class DecodingMethod : public Method {
 public:
  bool predicts() const override { return false; }
  bool generates() const override { return true; }
  double predict(const UserData&, const std::string&, const std::string&, const std::string&, MethodContext&) override {
    return 0.5;
  }
  // The user model is fitted once per budget and shared by every decoding method of the run.
  void fit(const FitData& data, MethodContext& ctx) override {
    profile_ = ctx.shared<DimensionWeights>("decoding.dimension_weights#" + std::to_string(data.budget), [&] {
      std::shared_ptr<DimensionWeights> p = make_dimension_weights();
      p->fit(data, ctx);
      return p;
    });
    dimensions_ = data.dimensions;
    fit_strategy(data, ctx);
  }
  // Strategies that batch across users override generate_batch, the others generate.
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    return generate_batch({user}, prompt, ctx)[0];
  }

 protected:
  virtual void fit_strategy(const FitData&, MethodContext&) {}
  // The user's weights scaled to unit length (zeros before a fit with pairs), so that a strategy's strength means the
  // same for every user.
  std::vector<double> unit_weights(const UserData& user, MethodContext& ctx) {
    auto w = profile_->weights(user, ctx).mean;
    double n = 0;
    for (double x : w) n += x * x;
    n = std::sqrt(n);
    if (n > 0)
      for (double& x : w) x /= n;
    if (w.empty()) w.assign(dimensions_.size(), 0.0);
    return w;
  }
  uint64_t seed_of(MethodContext& ctx, const std::string& name, const std::string& key) const {
    return derive_seed(ctx.seed(), name + "." + key);
  }

  std::shared_ptr<DimensionWeights> profile_;
  std::vector<std::string> dimensions_;
};

// Shared by the generating methods of decoding.cpp and policy.cpp: a prompt's ids with the tokenizer's special tokens,
// the run's sampling settings (stopping at end-of-text) with a seed, and a response charged passes forward passes.
std::vector<int64_t> encode_prompt(const runtime::Tokenizer& tok, const std::string& text);
runtime::GenerateOptions sampling_options(const MethodContext& ctx, uint64_t seed);
Response response_of(const runtime::GenerateResult& r, int64_t passes);

// A linear Bradley–Terry head on the backbone features of pairs, the L2 strength picked on held-out prompts (l2 > 0:
// fixed); and one head per dimension on the first `limit` pairs of each (multi_linear's heads).
// spec: the features (a scoring::FeatureSpec's text; empty: the run's).
training::LinearBt fit_feature_head(const std::vector<PairText>& pairs, MethodContext& ctx, double l2 = 0.0,
                                    const std::string& spec = "");
std::vector<training::LinearBt> fit_feature_heads(const std::vector<std::vector<PairText>>& dimension_pairs,
                                                  MethodContext& ctx, size_t limit = SIZE_MAX,
                                                  const std::string& spec = "");

// What the methods that train through the backbone (steering vectors, ARM and DPO adapters) take of each dimension's
// pairs: the first kTrainedPairsPerDimension. Their cost grows with every pair (a forward and backward pass each, per
// epoch), while a linear head on cached features takes thousands in seconds; 512 is above what each was tuned on (64).
inline constexpr size_t kTrainedPairsPerDimension = 512;
inline std::vector<PairText> trained_pairs(const std::vector<PairText>& pairs) {
  return {pairs.begin(),
          pairs.begin() + static_cast<std::ptrdiff_t>(std::min(pairs.size(), kTrainedPairsPerDimension))};
}

// GenARM's autoregressive rewards: one LoRA adapter on the policy per named dimension, trained on that dimension's
// pairs (training::fit_arm_adapter); beta receives the reward scale β.
std::vector<runtime::LoraAdapter> fit_dimension_arms(const FitData& data, MethodContext& ctx, double* beta);

// Best-of-N over a prompt's pooled samples: the highest-scoring sample's text (the first on ties), charged with the
// whole pool's tokens and time, the batch's forward passes plus extra_passes (e.g. one batched scoring pass).
Response best_of_pool(const std::vector<Response>& pool, const std::function<double(const Response&)>& score,
                      int64_t extra_passes = 0);

}  // namespace palign::bench
