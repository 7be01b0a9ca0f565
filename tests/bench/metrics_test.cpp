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

TEST(Metrics, BadInputs) {
  EXPECT_THROW(bootstrap_mean({}, 1), Error);
  EXPECT_THROW(worst_decile_mean({}), Error);
  EXPECT_THROW(win_rate({1}, {1, 2}, 1), Error);
  EXPECT_THROW(wilson_interval(3, 2), Error);
  EXPECT_THROW(bootstrap_mean({1.0}, 1, 2), Error);
}
