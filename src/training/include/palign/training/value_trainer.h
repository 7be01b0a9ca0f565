// A prefix value model for value-guided decoding (`palign train value`, `--strategy value`): Controlled Decoding's
// CD-FUDGE (Mudgal et al. 2024) — sample rollouts from the policy, score each whole rollout with a reward, and regress
// that reward onto every prefix of the rollout — with Value Augmented Sampling's TD(λ) targets (Han et al. 2024) as an
// option. The value head is linear on the policy's final hidden state at the prefix's last token, so it is written as
// a *ForSequenceClassification head on the backbone (runtime::classifier_on_backbone) and decoded with ARGS's batched
// k-row pass: the policy's top-k tokens v re-weighted by exp(β · V(prefix + v)).
//
// States: a rollout of L new tokens has prefixes s_1..s_L (j new tokens each); s_L is the whole text, whose value is
// its reward r. Targets per prefix, with γ = 1 and the reward only at the end:
//   Monte Carlo (λ = 1, CD-FUDGE)  G_j = r for every j;
//   TD(λ)                          G_L = r, G_j = (1 − λ) · V(s_{j+1}) + λ · G_{j+1} (V(s_L) read as r), refitted
//                                  td_rounds times from the Monte Carlo fit (fitted value iteration).
// The fit is ridge regression with an intercept, its L2 strength chosen on held-out prompts' rollouts.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "palign/runtime/generate.h"

namespace palign::runtime {
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::training {

struct ValueOptions {
  int64_t rollouts = 4;               // per prompt, sampled in one batch
  runtime::GenerateOptions generate;  // the rollouts' budget, sampling and stop ids; seed: prompt p's is seed + p·1000
  double td_lambda = 1.0;             // 1: Monte Carlo targets (CD-FUDGE); [0, 1): TD(λ) (VAS)
  int64_t td_rounds = 3;              // TD(λ): refits after the Monte Carlo one
  double l2 = -1;                     // < 0: chosen on the held-out prompts from {1e-3, 1e-2, ..., 1e2} x the mean
                                      // squared feature norm
  double valid_share = 0.2;           // prompts held out to choose l2 and report the fit (0: none, l2 must be given)
  // Append new fields here.

  std::string validate() const;
};

// Rollouts and their prefixes' features: rollout i continues prompts[prompt_of[i]] with ids[i] (L_i ≥ 1 tokens);
// features[i] [L_i, D] float32 is the policy's final hidden state after each new token (row j - 1: prefix s_j);
// rewards [R, K] float64 each whole rollout's K rewards. Rollouts with no new token are dropped.
struct ValueRollouts {
  std::vector<int64_t> prompt_of;
  std::vector<std::vector<int64_t>> ids;
  std::vector<at::Tensor> features;
  at::Tensor rewards;
};

// K rewards of each continuation (the new ids) of prompt p.
using RolloutReward =
    std::function<std::vector<std::vector<double>>(int64_t prompt, const std::vector<std::vector<int64_t>>& rollouts)>;

// options.rollouts samples per prompt in one batch (runtime::generate), their features in one batched forward per
// prompt. Throws kInvalidArgument for no prompts, bad options, rewards of the wrong shape or non-finite rewards.
ValueRollouts sample_value_rollouts(const runtime::Model& model, const runtime::Tokenizer* tokenizer,
                                    const std::vector<std::vector<int64_t>>& prompts, const RolloutReward& reward,
                                    const ValueOptions& options);

// The targets [L_i, K] of each rollout's prefixes (float64). values: the current fit's V of each rollout's prefixes
// [L_i, K] (empty, or td_lambda = 1: Monte Carlo).
std::vector<at::Tensor> value_targets(const ValueRollouts& rollouts, double td_lambda,
                                      const std::vector<at::Tensor>& values = {});

struct ValueFit {
  at::Tensor head;  // [K, D] float32
  at::Tensor bias;  // [K] float32: V = head · h + bias (decoding ignores it: a constant per step)
  double l2 = 0;
  int64_t train_prompts = 0, valid_prompts = 0, train_prefixes = 0, valid_prefixes = 0;
  // Held out: R² of the targets (Monte Carlo rewards for λ = 1) over every prefix, and of the rewards at the first
  // new token alone (how much of the final reward the shortest prefix predicts); NaN without held-out prompts.
  double valid_r2 = 0, valid_r2_first = 0, train_r2 = 0;
  double mean_rollout_tokens = 0;
};

// Fits on rollouts (prompts split into train and held out by options.valid_share, the held-out ones last). Throws
// kInvalidArgument for bad options or too few prompts to hold some out.
ValueFit fit_value(const ValueRollouts& rollouts, int64_t n_prompts, const ValueOptions& options);

}  // namespace palign::training
