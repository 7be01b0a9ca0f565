// Bench statistics: hand-computed values, interval coverage and the bad-input paths.
#include "palign/bench/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "palign/base/error.h"

using namespace palign;
using namespace palign::bench;

TEST(Metrics, HandComputedValues) {
  EXPECT_DOUBLE_EQ(worst_decile_mean({5, 1, 9, 3, 7, 2, 8, 4, 6, 10}), 1.0);
  EXPECT_DOUBLE_EQ(worst_decile_mean({5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 0, -1, 12, 11, 13, 14, 15, 16, 17, 18}), -0.5);
  EXPECT_DOUBLE_EQ(oracle_gain_share(1.5, 1.0, 3.0), 0.25);
  EXPECT_TRUE(std::isnan(oracle_gain_share(1.5, 1.0, 1.0)));
  auto w = win_rate({1, 2, 3, 4}, {0, 2, 5, 1}, 1);
  EXPECT_DOUBLE_EQ(w.value, (1 + 0.5 + 0 + 1) / 4.0);
  // Wilson interval of 8/10: (0.4902, 0.9433).
  auto wi = wilson_interval(8, 10);
  std::printf("wilson 8/10: [%.4f, %.4f]\n", wi.lo, wi.hi);
  EXPECT_NEAR(wi.lo, 0.4902, 1e-4);
  EXPECT_NEAR(wi.hi, 0.9433, 1e-4);
}

TEST(Metrics, BootstrapIntervalIsDeterministicAndCoversTheMean) {
  std::mt19937_64 rng(5);
  int covered = 0;
  const int trials = 200;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> xs;
    for (int i = 0; i < 50; ++i) xs.push_back(static_cast<double>(rng() % 1000) / 1000.0);  // uniform, mean ~0.4995
    auto e = bootstrap_mean(xs, 11 + t, 400);
    covered += e.lo <= 0.4995 && 0.4995 <= e.hi;
    if (t == 0) {
      auto again = bootstrap_mean(xs, 11, 400);
      EXPECT_EQ(e.lo, again.lo);
      EXPECT_EQ(e.hi, again.hi);
    }
  }
  std::printf("bootstrap 95%% interval covered the true mean in %d of %d samples\n", covered, trials);
  EXPECT_GE(covered, 175);  // ~0.93 expected; a binomial lower bound
}

// A grid's mean by hand; a paired difference of a grid with itself is exactly 0 in every resample; the two-way
// interval resamples prompts as well as users.
TEST(Metrics, GridMeansAndPairedDifferences) {
  Grid g(2, 3);
  g.add(0, 0, 1.0);
  g.add(0, 0, 0.0);  // a cell of two items: mean 0.5, weight 2
  g.add(0, 2, 1.0);
  g.add(1, 1, 0.25, 2.0);
  EXPECT_DOUBLE_EQ(g.mean(), (1.0 + 0.0 + 1.0 + 0.5) / 5.0);
  EXPECT_TRUE(std::isnan(Grid(2, 2).mean()));
  const auto same = bootstrap_grids(
      {&g, &g}, [](const std::vector<double>& m) { return m[0] - m[1]; }, 3, 200);
  EXPECT_EQ(same.value, 0.0);
  EXPECT_EQ(same.lo, 0.0);
  EXPECT_EQ(same.hi, 0.0);
  const auto again = bootstrap_grids(
      {&g}, [](const std::vector<double>& m) { return m[0]; }, 3, 200);
  const auto twice = bootstrap_grids(
      {&g}, [](const std::vector<double>& m) { return m[0]; }, 3, 200);
  EXPECT_EQ(again.lo, twice.lo);
  EXPECT_EQ(again.hi, twice.hi);
  EXPECT_LE(again.lo, again.value);
  EXPECT_GE(again.hi, again.value);
}

// Users × prompts with a random effect for each (the prompts shared by every user, as the bench's are): the two-way
// interval covers the true mean about 95% of the time; an interval that resamples users alone (one column) misses
// it far more often, because it ignores the prompts' noise.
TEST(Metrics, TwoWayBootstrapCoversWhatUsersAloneMiss) {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int trials = 150, users = 30, prompts = 8;
  int two_way = 0, users_only = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> user_effect(users), prompt_effect(prompts);
    for (auto& x : user_effect) x = normal(rng);
    for (auto& x : prompt_effect) x = normal(rng);
    Grid g(users, prompts), by_user(users, 1);
    for (int u = 0; u < users; ++u)
      for (int p = 0; p < prompts; ++p) {
        const double y = user_effect[u] + prompt_effect[p] + 0.5 * normal(rng);
        g.add(u, p, y);
        by_user.add(u, 0, y);
      }
    auto mean = [](const std::vector<double>& m) { return m[0]; };
    const auto a = bootstrap_grids({&g}, mean, 100 + t, 300);
    const auto b = bootstrap_grids({&by_user}, mean, 100 + t, 300);
    two_way += a.lo <= 0.0 && 0.0 <= a.hi;
    users_only += b.lo <= 0.0 && 0.0 <= b.hi;
  }
  std::printf("true mean covered: two-way %d of %d, users only %d of %d\n", two_way, trials, users_only, trials);
  EXPECT_GE(two_way, 125);  // ~0.9 or more expected (8 prompts make the percentile interval a little narrow)
  EXPECT_LT(users_only, two_way - 30);
}

TEST(Metrics, BadInputs) {
  EXPECT_THROW(bootstrap_mean({}, 1), Error);
  EXPECT_THROW(worst_decile_mean({}), Error);
  EXPECT_THROW(win_rate({1}, {1, 2}, 1), Error);
  EXPECT_THROW(wilson_interval(3, 2), Error);
  EXPECT_THROW(bootstrap_mean({1.0}, 1, 2), Error);
  auto first = [](const std::vector<double>& m) { return m[0]; };
  const Grid a(2, 2), b(2, 3), empty(0, 3);
  EXPECT_THROW(bootstrap_grids({}, first, 1), Error);
  EXPECT_THROW(bootstrap_grids({&a, &b}, first, 1), Error);
  EXPECT_THROW(bootstrap_grids({&empty}, first, 1), Error);
  EXPECT_THROW(bootstrap_grids({&a}, first, 1, 5), Error);
  Grid c(2, 2);
  EXPECT_THROW(c.add(2, 0, 1.0), Error);
  EXPECT_THROW(c.add(0, -1, 1.0), Error);
}
