// A user's weights over named preference dimensions, with their uncertainty: the Gaussian N(mean, covariance) of the
// Laplace approximation to the Bradley–Terry posterior
//   p(w | pairs) ∝ Π_i σ(w · d_i) · N(w; prior_mean, I / prior_precision),
// d_i a pair's per-dimension score differences (chosen − rejected, e.g. a multi-objective reward's labels). The mean
// is the MAP (the same damped Newton fit as the `linear` reward, scoring::linear_map_fit); the covariance the inverse
// Hessian of the negative log posterior there. fit_dimension_weights is the batch form; the online learner updates
// it one feedback event at a time. UserProfile::weights holds the mean by name (as_map).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "palign/scoring/preference_data.h"

namespace palign::scoring {
class RewardModel;
}

namespace palign::users {

struct DimensionWeights {
  std::vector<std::string> names;
  std::vector<double> mean;        // [K]
  std::vector<double> covariance;  // [K, K] row-major

  // The standard deviation of each weight (the square roots of the covariance's diagonal).
  std::vector<double> sd() const;
  // name -> mean, as a profile's weights.
  std::map<std::string, double> as_map() const;
};

// The prior alone: mean prior_mean, covariance I / prior_precision. Throws kInvalidArgument for no names, a repeated
// or empty name, a prior mean of another size or not finite, a precision that is not a positive finite number.
DimensionWeights prior_dimension_weights(const std::vector<std::string>& names, const std::vector<double>& prior_mean,
                                         double prior_precision);

// The posterior given pairs' differences ([N][K], N may be 0). Throws as prior_dimension_weights, and for a
// difference of another size than names or not finite (naming the pair).
DimensionWeights fit_dimension_weights(const std::vector<std::string>& names,
                                       const std::vector<std::vector<double>>& differences,
                                       const std::vector<double>& prior_mean, double prior_precision);

// The posterior's Gaussian at a given mean (the MAP of a fit done elsewhere, e.g. the `linear` reward's user state):
// mean as given, covariance the inverse Hessian of the negative log posterior at it. fit_dimension_weights is this at
// its own MAP. Throws as fit_dimension_weights, and for a mean of another size than names or not finite.
DimensionWeights dimension_weights_at(const std::vector<std::string>& names,
                                      const std::vector<std::vector<double>>& differences,
                                      const std::vector<double>& mean, double prior_precision);

// A user's weights over a reward's labels (a multi-objective classifier, an arm directory's dimensions) from their
// labelled pairs: each pair's label scores, chosen minus rejected, fitted with the prior N(0, I / prior_precision).
// Throws kInvalidArgument for a personalized reward (it scores users itself), no pairs, and as fit_dimension_weights.
DimensionWeights fit_weights_from_pairs(scoring::RewardModel& reward,
                                        const std::vector<scoring::PreferenceRecord>& pairs,
                                        double prior_precision = 1.0);

}  // namespace palign::users
