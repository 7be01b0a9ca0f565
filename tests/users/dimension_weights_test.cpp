// A user's weights with their uncertainty: the prior alone, a one-dimension case solved by hand, the covariance
// against a finite-difference Hessian of the negative log posterior, more pairs giving narrower weights, bad inputs.
#include "palign/users/dimension_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/scoring/reward_model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::users;
using palign::test::error_code_of;

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Σ softplus(−w·d_i) + λ/2 ‖w − m‖², written out.
double neg_log_posterior(const std::vector<double>& w, const std::vector<std::vector<double>>& d,
                         const std::vector<double>& m, double lambda) {
  double f = 0;
  for (const auto& row : d) {
    double margin = 0;
    for (size_t j = 0; j < w.size(); ++j) margin += w[j] * row[j];
    f += std::log1p(std::exp(-margin));
  }
  for (size_t j = 0; j < w.size(); ++j) f += 0.5 * lambda * (w[j] - m[j]) * (w[j] - m[j]);
  return f;
}

// A user who weighs three dimensions (2, −1, 0.5), n pairs of random score differences, labels drawn from the model.
std::vector<std::vector<double>> planted(int n, uint64_t seed) {
  Rng rng(seed);
  const double truth[3] = {2.0, -1.0, 0.5};
  std::vector<std::vector<double>> out;
  for (int i = 0; i < n; ++i) {
    std::vector<double> d = {rng.normal(), rng.normal(), rng.normal()};
    const double margin = truth[0] * d[0] + truth[1] * d[1] + truth[2] * d[2];
    if (!rng.bernoulli(sigmoid(margin)))
      for (double& x : d) x = -x;  // the other response was chosen
    out.push_back(d);
  }
  return out;
}

}  // namespace

TEST(DimensionWeights, WithoutPairsThePriorItself) {
  const auto w = fit_dimension_weights({"humour", "length"}, {}, {0.5, -1.0}, 4.0);
  EXPECT_EQ(w.mean, (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(w.covariance, (std::vector<double>{0.25, 0.0, 0.0, 0.25}));
  EXPECT_EQ(w.sd(), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(w.as_map(), (std::map<std::string, double>{{"humour", 0.5}, {"length", -1.0}}));
}

// One dimension, one pair with difference 2, prior N(0, 1): the MAP solves w = 2 σ(−2w) (found here by bisection),
// and the variance is 1 / (4 σ(2w) σ(−2w) + 1).
TEST(DimensionWeights, OneDimensionByHand) {
  double lo = 0, hi = 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (mid - 2 * sigmoid(-2 * mid) < 0 ? lo : hi) = mid;
  }
  const double map = 0.5 * (lo + hi), var = 1.0 / (4 * sigmoid(2 * map) * sigmoid(-2 * map) + 1);
  const auto w = fit_dimension_weights({"humour"}, {{2.0}}, {0.0}, 1.0);
  std::printf("by hand: mean %.12f var %.12f; fit: mean %.12f var %.12f\n", map, var, w.mean[0], w.covariance[0]);
  EXPECT_NEAR(w.mean[0], map, 1e-9);
  EXPECT_NEAR(w.covariance[0], var, 1e-9);
}

// The covariance is the inverse of the negative log posterior's Hessian at the mean, where the gradient vanishes:
// checked against central differences of the objective written out above.
TEST(DimensionWeights, CovarianceIsTheInverseHessianAtTheMode) {
  const auto d = planted(30, 4);
  const std::vector<double> m = {0.1, 0.0, -0.2};
  const double lambda = 2.0;
  const auto w = fit_dimension_weights({"a", "b", "c"}, d, m, lambda);
  const double eps = 1e-4;
  double worst_grad = 0, worst = 0;
  double hess[3][3];
  for (int i = 0; i < 3; ++i) {
    auto plus = w.mean, minus = w.mean;
    plus[i] += eps, minus[i] -= eps;
    worst_grad =
        std::max(worst_grad,
                 std::abs(neg_log_posterior(plus, d, m, lambda) - neg_log_posterior(minus, d, m, lambda)) / (2 * eps));
    for (int j = 0; j < 3; ++j) {
      auto pp = w.mean, pm = w.mean, mp = w.mean, mm = w.mean;
      pp[i] += eps, pp[j] += eps, pm[i] += eps, pm[j] -= eps, mp[i] -= eps, mp[j] += eps, mm[i] -= eps, mm[j] -= eps;
      hess[i][j] = (neg_log_posterior(pp, d, m, lambda) - neg_log_posterior(pm, d, m, lambda) -
                    neg_log_posterior(mp, d, m, lambda) + neg_log_posterior(mm, d, m, lambda)) /
                   (4 * eps * eps);
    }
  }
  // covariance · Hessian = I.
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += w.covariance[i * 3 + k] * hess[k][j];
      worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
    }
  std::printf("gradient at the mean: max |g| %.3g; covariance x finite-difference Hessian vs I: max |diff| %.3g\n",
              worst_grad, worst);
  EXPECT_LT(worst_grad, 1e-6);
  EXPECT_LT(worst, 1e-5);
}

// The Gaussian at a given mean: at the fit's own MAP it is the fit (one computation, so exactly); at another point the
// covariance is the inverse Hessian there, which the hand-written Hessian of one dimension confirms.
TEST(DimensionWeights, AtAGivenMeanTheInverseHessianThere) {
  const auto d = planted(20, 6);
  const std::vector<double> m = {0.0, 0.3, -0.1};
  const auto fitted = fit_dimension_weights({"a", "b", "c"}, d, m, 1.5);
  const auto at_map = dimension_weights_at({"a", "b", "c"}, d, fitted.mean, 1.5);
  EXPECT_EQ(at_map.mean, fitted.mean);
  EXPECT_EQ(at_map.covariance, fitted.covariance);
  // One dimension, w = 0.5, pairs d = 1 and d = -2, λ = 1: H = Σ σ(w d)σ(−w d) d² + λ.
  auto s = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const double h = s(0.5) * s(-0.5) * 1.0 + s(-1.0) * s(1.0) * 4.0 + 1.0;
  const auto one = dimension_weights_at({"a"}, {{1.0}, {-2.0}}, {0.5}, 1.0);
  std::printf("one dimension: covariance %.12f vs 1/H %.12f\n", one.covariance[0], 1.0 / h);
  EXPECT_NEAR(one.covariance[0], 1.0 / h, 1e-12);
  EXPECT_EQ(one.mean, (std::vector<double>{0.5}));
  // Without pairs: the prior's covariance around the given mean.
  const auto none = dimension_weights_at({"a", "b"}, {}, {1.0, -1.0}, 4.0);
  EXPECT_EQ(none.covariance, (std::vector<double>{0.25, 0.0, 0.0, 0.25}));
  EXPECT_EQ(test::error_code_of([] {
              dimension_weights_at({"a"}, {{1.0, 2.0}}, {0.5}, 1.0);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(test::error_code_of([] {
              dimension_weights_at({"a"}, {{1.0}}, {0.5, 1.0}, 1.0);
            }),
            ErrorCode::kInvalidArgument);
}

TEST(DimensionWeights, MorePairsNarrowTheWeights) {
  const auto few = fit_dimension_weights({"a", "b", "c"}, planted(8, 5), {0, 0, 0}, 1.0);
  const auto many = fit_dimension_weights({"a", "b", "c"}, planted(400, 5), {0, 0, 0}, 1.0);
  for (size_t j = 0; j < 3; ++j) {
    std::printf("dimension %zu: 8 pairs %.3f ± %.3f, 400 pairs %.3f ± %.3f\n", j, few.mean[j], few.sd()[j],
                many.mean[j], many.sd()[j]);
    EXPECT_LT(many.sd()[j], few.sd()[j]);
  }
  // With 400 pairs the planted weights (2, −1, 0.5) lie within three standard deviations.
  const double truth[3] = {2.0, -1.0, 0.5};
  for (size_t j = 0; j < 3; ++j) EXPECT_LT(std::abs(many.mean[j] - truth[j]), 3 * many.sd()[j]) << j;
}

TEST(DimensionWeights, BadInputsAreNamed) {
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({}, {}, {}, 1.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a", "a"}, {}, {0, 0}, 1.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a"}, {}, {0, 0}, 1.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a"}, {}, {0}, 0.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a"}, {}, {NAN}, 1.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a"}, {{1.0, 2.0}}, {0}, 1.0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { fit_dimension_weights({"a"}, {{INFINITY}}, {0}, 1.0); }), ErrorCode::kInvalidArgument);
}

// Weights from a user's pairs under a multi-label reward: the fit on each pair's label differences, scored one by one.
TEST(DimensionWeights, FromPairsUnderAMultiLabelReward) {
  const auto reward = scoring::RewardModel::load(test::hf_model("llama_rm_multi"));
  std::vector<scoring::PreferenceRecord> pairs;
  const char* responses[] = {" a cat", " the dog ran far", " sun!", " rain and code", " bread"};
  for (int i = 0; i < 5; ++i) {
    scoring::PreferenceRecord p;
    p.prompt = "Tell me";
    p.chosen = responses[i];
    p.rejected = responses[(i + 2) % 5];
    pairs.push_back(p);
  }
  const auto w = fit_weights_from_pairs(*reward, pairs, 2.0);
  std::vector<std::vector<double>> d;
  for (const auto& p : pairs) {
    const auto c = reward->score(p.prompt, p.chosen), r = reward->score(p.prompt, p.rejected);
    d.emplace_back();
    for (size_t k = 0; k < c.size(); ++k) d.back().push_back(c[k] - r[k]);
  }
  const auto twin = fit_dimension_weights(reward->labels(), d, std::vector<double>(reward->labels().size(), 0.0), 2.0);
  EXPECT_EQ(w.names, reward->labels());
  EXPECT_EQ(w.mean, twin.mean);  // the same scores through the same fit
  EXPECT_EQ(w.covariance, twin.covariance);
  EXPECT_EQ(error_code_of([&] { fit_weights_from_pairs(*reward, {}); }), ErrorCode::kInvalidArgument);
}
