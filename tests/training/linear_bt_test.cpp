// The linear Bradley–Terry fit: recovers planted weights, agrees with plain gradient descent (its naive twin) with
// more and with fewer pairs than features, holds out whole groups, and handles the empty and bad-input cases.
#include "palign/training/linear_bt.h"

#include <gtest/gtest.h>

#include <cmath>

#include "palign/base/error.h"
#include "palign/base/rng.h"

using namespace palign;
using namespace palign::training;

namespace {

struct Planted {
  std::vector<std::vector<float>> chosen, rejected;
  std::vector<double> w;
};

// Features ~ N(0, 1) (so standardisation is near the identity); labels ~ σ(w · (a − b)).
Planted planted(int n, int dim, uint64_t seed) {
  Rng rng(seed);
  Planted p;
  for (int j = 0; j < dim; ++j) p.w.push_back(j < 3 ? 1.5 - j : 0.0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> a(dim), b(dim);
    for (int j = 0; j < dim; ++j) a[j] = static_cast<float>(rng.normal()), b[j] = static_cast<float>(rng.normal());
    double delta = 0.0;
    for (int j = 0; j < dim; ++j) delta += p.w[j] * (a[j] - b[j]);
    const bool a_wins = rng.uniform() < 1.0 / (1.0 + std::exp(-delta));
    p.chosen.push_back(a_wins ? a : b);
    p.rejected.push_back(a_wins ? b : a);
  }
  return p;
}

TEST(LinearBt, RecoversPlantedWeights) {
  const Planted p = planted(4000, 8, 7);
  const LinearBt bt = fit_linear_bt(p.chosen, p.rejected, {.seed = 1});
  // Weights on standardised features: compare directions.
  double dot = 0.0, ww = 0.0, pp = 0.0;
  for (size_t j = 0; j < p.w.size(); ++j) {
    const double w = bt.weights[j] / bt.scale[j];
    dot += w * p.w[j], ww += w * w, pp += p.w[j] * p.w[j];
  }
  const double cosine = dot / std::sqrt(ww * pp);
  std::printf("cosine to planted weights %.4f, l2 picked %.2f, w0 %.3f (planted 1.5)\n", cosine, bt.l2,
              bt.weights[0] / bt.scale[0]);
  EXPECT_GT(cosine, 0.98);
  EXPECT_NEAR(bt.weights[0] / bt.scale[0], 1.5, 0.2);
}

// The naive twin: plain full-batch gradient descent on the same objective, Σ softplus(−x_i · w) + l2/2 ‖w‖² over the
// standardised differences; returns the largest difference from the fit's weights.
double gd_difference(const Planted& p, const LinearBt& bt, double l2, double lr, int steps) {
  const size_t dim = bt.weights.size();
  std::vector<std::vector<double>> x;
  for (size_t i = 0; i < p.chosen.size(); ++i) {
    std::vector<double> row(dim);
    for (size_t j = 0; j < dim; ++j) row[j] = (p.chosen[i][j] - p.rejected[i][j]) / bt.scale[j];
    x.push_back(row);
  }
  std::vector<double> w(dim, 0.0);
  for (int step = 0; step < steps; ++step) {
    std::vector<double> grad(dim, 0.0);
    for (const auto& row : x) {
      double s = 0.0;
      for (size_t j = 0; j < dim; ++j) s += row[j] * w[j];
      const double sig = 1.0 / (1.0 + std::exp(-s));
      for (size_t j = 0; j < dim; ++j) grad[j] += (sig - 1.0) * row[j];
    }
    for (size_t j = 0; j < dim; ++j) w[j] -= lr * (grad[j] + l2 * w[j]);
  }
  double max_diff = 0.0;
  for (size_t j = 0; j < dim; ++j) max_diff = std::max(max_diff, std::abs(w[j] - bt.weights[j]));
  return max_diff;
}

// Newton's solution equals the minimiser found by gradient descent: with more pairs than features (the d × d
// system) and with fewer (Woodbury's n × n system).
TEST(LinearBt, NewtonMatchesGradientDescent) {
  const Planted p = planted(300, 4, 3);
  const LinearBt bt = fit_linear_bt(p.chosen, p.rejected, {.l2_grid = {2.0}});
  const double diff = gd_difference(p, bt, 2.0, 0.002, 20000);
  std::printf("Newton (n > d) vs gradient descent: max |dw| = %.2e\n", diff);
  EXPECT_LT(diff, 1e-5);
  const Planted wide = planted(12, 40, 5);
  const LinearBt dual = fit_linear_bt(wide.chosen, wide.rejected, {.l2_grid = {2.0}});
  const double dual_diff = gd_difference(wide, dual, 2.0, 0.005, 20000);
  std::printf("Newton (n < d, Woodbury) vs gradient descent: max |dw| = %.2e\n", dual_diff);
  EXPECT_LT(dual_diff, 1e-5);
}

// With groups, the L2 strength is picked on whole held-out groups; a group per pair must be given for every pair.
TEST(LinearBt, GroupsHoldOutWholeGroups) {
  const Planted p = planted(400, 6, 11);
  std::vector<int64_t> groups;
  for (size_t i = 0; i < p.chosen.size(); ++i) groups.push_back(static_cast<int64_t>(i % 10));
  LinearBtOptions o;
  o.seed = 2;
  o.groups = groups;
  const LinearBt bt = fit_linear_bt(p.chosen, p.rejected, o);
  EXPECT_EQ(bt.weights.size(), 6u);
  EXPECT_NEAR(bt.weights[0] / bt.scale[0], 1.5, 0.3);
  o.groups.pop_back();
  EXPECT_THROW(fit_linear_bt(p.chosen, p.rejected, o), Error);
}

TEST(LinearBt, EmptyAndBadInput) {
  const LinearBt empty = fit_linear_bt({}, {});
  EXPECT_TRUE(empty.weights.empty());
  EXPECT_EQ(empty.score({1.0f, 2.0f}), 0.0);
  EXPECT_THROW(fit_linear_bt({{1.0f}}, {}), Error);
  EXPECT_THROW(fit_linear_bt({{1.0f, 2.0f}}, {{1.0f}}), Error);
  EXPECT_THROW(fit_linear_bt({{1.0f}}, {{0.0f}}, {.l2_grid = {}}), Error);
  EXPECT_THROW(fit_linear_bt({{1.0f}}, {{0.0f}}, {.l2_grid = {-1.0}}), Error);
  const LinearBt one = fit_linear_bt({{1.0f, 0.0f}}, {{0.0f, 1.0f}}, {.l2_grid = {1.0}});
  EXPECT_GT(one.score({1.0f, 0.0f}), one.score({0.0f, 1.0f}));
  EXPECT_THROW(one.score({1.0f}), Error);
}

}  // namespace
