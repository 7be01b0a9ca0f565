// Statistics for bench figures: means with percentile-bootstrap 95% intervals, worst-decile means, win rates and
// the share of the oracle's gain. Deterministic given a seed (a portable generator, not std:: distributions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace palign::bench {

struct Estimate {
  double value = 0;  // the statistic on the full sample
  double lo = 0;     // 2.5th percentile of the bootstrap distribution
  double hi = 0;     // 97.5th percentile
  int64_t n = 0;
};

// Mean of xs with a percentile-bootstrap 95% interval (resampling xs with replacement). xs must be non-empty.
Estimate bootstrap_mean(const std::vector<double>& xs, uint64_t seed, int resamples = 1000);

// Mean of the lowest 10% of xs (at least one value): the "worst-decile users" figure.
double worst_decile_mean(std::vector<double> xs);
// Same, with a bootstrap interval.
Estimate bootstrap_worst_decile(const std::vector<double>& xs, uint64_t seed, int resamples = 1000);

// Win rate of a over b by per-item comparison (ties count half), with a bootstrap interval. Sizes must match.
Estimate win_rate(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed, int resamples = 1000);

// (method - base) / (oracle - base), the share of the oracle's gain; NaN when the oracle gains nothing.
double oracle_gain_share(double method, double base, double oracle);

// 95% Wilson score interval of k successes in n trials.
Estimate wilson_interval(int64_t k, int64_t n);

}  // namespace palign::bench
