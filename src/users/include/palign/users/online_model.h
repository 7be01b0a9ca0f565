// The online user model: a Gaussian posterior N(μ, Σ) over a user's weights w on K named dimension scores, the user's
// reward being r_u(y) = w · s(y). It starts from a population prior (mean and full covariance, fitted on known users)
// and is updated after every piece of feedback by one assumed-density step, never refitting the history.
//
// Every piece of feedback is, in score space, one or more logistic observations σ(w · d):
//   a choice      d = s(chosen) − s(other), one per response the user passed over (Bradley–Terry);
//   a rating      d = ±(s(y) − s(reference)), + for thumbs up, − for down (reference: what the user would otherwise
//                 have got, e.g. the mean of the candidates; zeros when unknown);
//   a statement   d = direction · strength · e_k on the named dimension k ("shorter answers, please": length, −1).
// One step (observe) is assumed-density filtering (the one-pass form of expectation propagation): the likelihood
// depends on w only through s = w · d, which is N(μ·d, dᵀΣd) under the current posterior; σ(s) is approximated by
// Φ(λ s), λ² = π/8, and the posterior's mean and covariance are matched to those of N(μ, Σ) · Φ(λ w · d) exactly, a
// shift of the mean along Σd and a rank-one shrink of Σ along it: O(K²) per observation, no refit of the history.
// batch_laplace is its reference: the Laplace approximation of prior × all likelihoods at once (Newton on the full
// log posterior). The two differ by construction (one matches moments one event at a time, the other fits the mode of
// the whole posterior); tests/users measures by how much (means a few tenths apart relatively, held-out accuracy
// within 0.01). Moment matching is the better calibrated of the two: its predictive probabilities follow the observed
// frequencies where the Laplace fit's are too cautious at the extremes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palign/users/dimension_weights.h"

namespace palign {
class Rng;
}

namespace palign::users {

// A prior of full covariance. Throws kInvalidArgument for no names, a repeated or empty name, a mean or covariance of
// another size or not finite, a covariance that is not symmetric positive definite.
DimensionWeights gaussian_prior(const std::vector<std::string>& names, const std::vector<double>& mean,
                                const std::vector<double>& covariance);

// The population prior from known users' weights ([U][K], e.g. each user's batch fit): their mean, and their sample
// covariance shrunk toward its diagonal by `shrinkage` in [0, 1] with `floor` added to the diagonal (U may be smaller
// than K). Throws kInvalidArgument for fewer than 2 users, rows of another size, values not finite, shrinkage outside
// [0, 1] or a floor that is not positive.
DimensionWeights population_prior(const std::vector<std::string>& names,
                                  const std::vector<std::vector<double>>& user_weights, double shrinkage = 0.1,
                                  double floor = 1e-3);

// P(a ≻ b) under the posterior: E_w σ(w · d) with d = a − b, by the probit approximation
// σ(μ·d / sqrt(1 + π dᵀΣd / 8)).
double predictive_preference(const DimensionWeights& posterior, const std::vector<double>& a,
                             const std::vector<double>& b);

class OnlineUserModel {
 public:
  // Checks the prior as gaussian_prior does.
  explicit OnlineUserModel(DimensionWeights prior);
  // Resumes a model from a posterior it produced (checked for its size only: no O(K³) factorisation).
  OnlineUserModel(DimensionWeights prior, DimensionWeights posterior, int64_t observations);

  const DimensionWeights& prior() const { return prior_; }
  const DimensionWeights& posterior() const { return posterior_; }
  int64_t observations() const { return observations_; }

  // One logistic observation σ(w · d) (the building block of the three below). Throws kInvalidArgument for d of
  // another size than the names or not finite; the model is unchanged then.
  void observe(const std::vector<double>& d);
  // The user preferred `chosen` over each of `others` (score vectors of K).
  void observe_choice(const std::vector<double>& chosen, const std::vector<std::vector<double>>& others);
  // Thumbs up (rating > 0) or down (rating < 0) on a response, against `reference` (empty: zeros). Throws for a
  // rating of 0.
  void observe_rating(const std::vector<double>& scores, int rating, const std::vector<double>& reference = {});
  // A stated preference on a named dimension: direction > 0 wants more of it, < 0 less; strength scales how much one
  // statement counts (1: as much as one choice with a unit score difference). Throws kInvalidArgument for an unknown
  // dimension (naming the known ones), a direction of 0 or a strength that is not positive.
  void observe_statement(const std::string& dimension, double direction, double strength = 1.0);

  double preference(const std::vector<double>& a, const std::vector<double>& b) const {
    return predictive_preference(posterior_, a, b);
  }

 private:
  DimensionWeights prior_;
  DimensionWeights posterior_;
  int64_t observations_ = 0;
};

// The logistic observations of a statement, a choice and a rating, as OnlineUserModel records them (for the batch
// reference and for replay).
std::vector<double> statement_direction(const std::vector<std::string>& names, const std::string& dimension,
                                        double direction, double strength);

// The Laplace approximation of prior × Π σ(w · d_i) over all observations at once: the MAP by damped Newton, the
// covariance the inverse Hessian there. Throws as OnlineUserModel::observe.
DimensionWeights batch_laplace(const DimensionWeights& prior, const std::vector<std::vector<double>>& observations);

// Which pair of candidate responses to show the user next, given each candidate's K scores.
enum class QueryPolicy {
  kInformation,  // the expected information gain about w of the user's answer (BALD, probit approximation)
  kVariance,     // the largest predictive variance of the preference, dᵀΣd
  kThompson,     // two posterior samples, each picks its best candidate (a second draw if they agree)
  kRandom,       // a uniformly random pair
};
QueryPolicy parse_query_policy(const std::string& name);  // information|variance|thompson|random
std::string query_policy_name(QueryPolicy policy);

struct QueryPair {
  int first = 0, second = 1;
  double value = 0;  // the policy's score of the pair (information: nats; variance: dᵀΣd; others: 0)
};
// anchor >= 0: only pairs with that candidate (e.g. the user's best under the posterior mean, shown beside the most
// informative alternative); first is then the anchor. Throws kInvalidArgument for fewer than 2 candidates, scores of
// another size than the names or not finite, an anchor outside them. All pairs are scored: N(N−1)/2 · O(K²) (N − 1
// with an anchor).
QueryPair choose_pair(const DimensionWeights& posterior, const std::vector<std::vector<double>>& candidates,
                      QueryPolicy policy, Rng& rng, int anchor = -1);

// The candidate of the highest reward under the posterior mean (the first of ties).
int best_candidate(const DimensionWeights& posterior, const std::vector<std::vector<double>>& candidates);

// The expected information gain about w of the answer to "a or b?" (nats): H(E p) − E H(p) over the posterior,
// p = σ(w · (a − b)), by Houlsby et al.'s probit approximation.
double expected_information(const DimensionWeights& posterior, const std::vector<double>& a,
                            const std::vector<double>& b);

}  // namespace palign::users
