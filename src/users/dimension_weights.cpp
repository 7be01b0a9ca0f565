#include "palign/users/dimension_weights.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>

#include "palign/base/error.h"
#include "palign/scoring/personalized_reward.h"
#include "palign/scoring/reward_model.h"

namespace palign::users {

std::vector<double> DimensionWeights::sd() const {
  const size_t k = mean.size();
  std::vector<double> out(k);
  for (size_t i = 0; i < k; ++i) out[i] = std::sqrt(covariance[i * k + i]);
  return out;
}

std::map<std::string, double> DimensionWeights::as_map() const {
  std::map<std::string, double> out;
  for (size_t i = 0; i < names.size(); ++i) out[names[i]] = mean[i];
  return out;
}

DimensionWeights prior_dimension_weights(const std::vector<std::string>& names, const std::vector<double>& prior_mean,
                                         double prior_precision) {
  PALIGN_CHECK(!names.empty(), ErrorCode::kInvalidArgument, "[users.weights] no dimensions to weigh");
  std::set<std::string> seen;
  for (const auto& n : names)
    PALIGN_CHECK(!n.empty() && seen.insert(n).second, ErrorCode::kInvalidArgument, "[users.weights] dimension '", n,
                 "' is empty or named twice; give each dimension one name");
  PALIGN_CHECK(prior_mean.size() == names.size(), ErrorCode::kInvalidArgument, "[users.weights] a prior mean of ",
               prior_mean.size(), " weights for ", names.size(), " dimensions");
  for (double m : prior_mean)
    PALIGN_CHECK(std::isfinite(m), ErrorCode::kInvalidArgument, "[users.weights] the prior mean is not finite");
  PALIGN_CHECK(prior_precision > 0 && std::isfinite(prior_precision), ErrorCode::kInvalidArgument,
               "[users.weights] the prior precision must be a positive finite number, got ", prior_precision);
  DimensionWeights w;
  w.names = names;
  w.mean = prior_mean;
  const size_t k = names.size();
  w.covariance.assign(k * k, 0.0);
  for (size_t i = 0; i < k; ++i) w.covariance[i * k + i] = 1.0 / prior_precision;
  return w;
}

namespace {

// differences as an [N, K] double tensor, checked.
at::Tensor difference_matrix(const std::vector<std::vector<double>>& differences, int64_t k) {
  const auto n = static_cast<int64_t>(differences.size());
  at::Tensor d = at::empty({n, k}, at::kDouble);
  double* p = d.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& row = differences[static_cast<size_t>(i)];
    PALIGN_CHECK(static_cast<int64_t>(row.size()) == k, ErrorCode::kInvalidArgument, "[users.weights] pair ", i + 1,
                 " has ", row.size(), " score differences for ", k, " dimensions");
    for (int64_t j = 0; j < k; ++j) {
      PALIGN_CHECK(std::isfinite(row[static_cast<size_t>(j)]), ErrorCode::kInvalidArgument, "[users.weights] pair ",
                   i + 1, " has a score difference that is not finite");
      p[i * k + j] = row[static_cast<size_t>(j)];
    }
  }
  return d;
}

// w with the covariance at mean: the inverse of the Hessian of Σ softplus(−w·d_i) + λ/2 ‖w − m‖² there,
// Σ σ(m_i) σ(−m_i) d_i d_iᵀ + λ I.
void set_posterior_at(DimensionWeights& w, const at::Tensor& d, const at::Tensor& mean, double prior_precision) {
  const int64_t k = mean.size(0);
  const at::Tensor margins = d.matmul(mean);
  const at::Tensor h = at::sigmoid(margins) * at::sigmoid(-margins);
  const at::Tensor hess = (d.t() * h).matmul(d) + prior_precision * at::eye(k, at::kDouble);
  const at::Tensor cov = at::linalg_inv(hess).contiguous();
  const at::Tensor m = mean.contiguous();
  w.mean.assign(m.data_ptr<double>(), m.data_ptr<double>() + k);
  w.covariance.assign(cov.data_ptr<double>(), cov.data_ptr<double>() + k * k);
}

}  // namespace

DimensionWeights fit_dimension_weights(const std::vector<std::string>& names,
                                       const std::vector<std::vector<double>>& differences,
                                       const std::vector<double>& prior_mean, double prior_precision) {
  DimensionWeights w = prior_dimension_weights(names, prior_mean, prior_precision);
  if (differences.empty()) return w;
  const at::Tensor d = difference_matrix(differences, static_cast<int64_t>(names.size()));
  const at::Tensor mean = scoring::linear_map_fit(d, at::tensor(prior_mean, at::kDouble), prior_precision);
  set_posterior_at(w, d, mean, prior_precision);
  return w;
}

DimensionWeights dimension_weights_at(const std::vector<std::string>& names,
                                      const std::vector<std::vector<double>>& differences,
                                      const std::vector<double>& mean, double prior_precision) {
  DimensionWeights w = prior_dimension_weights(names, mean, prior_precision);
  const at::Tensor d = difference_matrix(differences, static_cast<int64_t>(names.size()));
  set_posterior_at(w, d, at::tensor(mean, at::kDouble), prior_precision);
  return w;
}

DimensionWeights fit_weights_from_pairs(scoring::RewardModel& reward,
                                        const std::vector<scoring::PreferenceRecord>& pairs, double prior_precision) {
  PALIGN_CHECK(!reward.personalized(), ErrorCode::kInvalidArgument, "[users.weights] a ", reward.method(),
               " reward scores each user itself; weights over labels need a reward that is the same for everyone "
               "(multi, or an arm directory with dimensions)");
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[users.weights] no pairs to learn the weights from");
  std::vector<std::vector<double>> differences;
  for (const auto& p : pairs) {
    const auto chosen = reward.score(p.prompt, p.chosen), rejected = reward.score(p.prompt, p.rejected);
    std::vector<double> d(chosen.size());
    for (size_t k = 0; k < d.size(); ++k) d[k] = chosen[k] - rejected[k];
    differences.push_back(std::move(d));
  }
  const auto labels = reward.labels();
  return fit_dimension_weights(labels, differences, std::vector<double>(labels.size(), 0.0), prior_precision);
}

}  // namespace palign::users
