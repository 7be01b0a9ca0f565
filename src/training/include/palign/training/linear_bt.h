// A linear Bradley–Terry reward on feature vectors: r(y) = w · standardise(f(y)), fitted by L2-regularised logistic
// regression on the feature differences of labelled pairs (P(chosen ≻ rejected) = σ(r(chosen) − r(rejected))) with
// Newton's method. The L2 strength is picked from a grid on a held-out share of the pairs (or of their prompts),
// then the fit is redone on all of them. The bench's one-size-fits-all reward over the population; reward-model
// training proper lives in the training module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace palign::training {

struct LinearBtOptions {
  std::vector<double> l2_grid = {0.1, 1.0, 10.0, 100.0};  // one value skips validation
  double valid_share = 0.2;                               // of the pairs, for picking l2
  int newton_steps = 30;
  uint64_t seed = 0;  // which pairs are held out
  // Optional: pair i's group (its prompt). Given, the held-out pairs are whole groups (the L2 strength is then judged
  // on prompts the fit never saw).
  std::vector<int64_t> groups;
  // Append new fields here.
  std::string validate() const;  // "" when valid
};

struct LinearBt {
  std::vector<double> mean, scale;  // standardisation of each feature, from the fit's texts
  std::vector<double> weights;      // empty before a fit (score() is then 0)
  double l2 = 0.0;
  double score(const std::vector<float>& features) const;
};

// chosen[i] and rejected[i] are the features of pair i's responses (all the same size). With no pairs the result
// has no weights and scores 0 for everything. Throws kInvalidArgument on size mismatches or invalid options.
LinearBt fit_linear_bt(const std::vector<std::vector<float>>& chosen, const std::vector<std::vector<float>>& rejected,
                       const LinearBtOptions& options = {});

}  // namespace palign::training
