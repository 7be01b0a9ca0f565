// Statistics for bench figures: means with percentile-bootstrap 95% intervals, worst-decile means, win rates and
// the share of the oracle's gain; figures over users × prompts with a two-way bootstrap that resamples both, paired
// across methods. Deterministic given a seed (a portable generator, not std:: distributions).
#pragma once

#include <cstdint>
#include <functional>
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

// Per-cell values over two crossed sources of noise — rows (users) × columns (prompts) — each cell a weighted sum
// (e.g. a user's credits on their test pairs at one prompt, weight: the pairs' count; a cell without weight is
// absent). Every grid a statistic compares must have the same shape.
struct Grid {
  Grid() = default;
  Grid(int64_t rows, int64_t cols);
  int64_t rows = 0, cols = 0;
  std::vector<double> sum, weight;  // [rows * cols]

  void add(int64_t row, int64_t col, double value, double w = 1.0);
  // Σ sum / Σ weight over every cell (NaN without weight).
  double mean() const;
};

// stat(means) where means[i] is grids[i]'s mean, with a two-way percentile-bootstrap 95% interval: each resample
// draws rows and columns with replacement — the same draw for every grid, so differences between grids are paired —
// and weighs each cell by its row's and column's multiplicities. A resample whose stat is not finite is skipped.
// Throws kInvalidArgument for no grids, grids of different shapes, an empty grid, fewer than 10 resamples.
Estimate bootstrap_grids(const std::vector<const Grid*>& grids,
                         const std::function<double(const std::vector<double>&)>& stat, uint64_t seed,
                         int resamples = 1000);

// Pearson's correlation of paired samples; NaN when either is constant or they are shorter than 2. Throws
// kInvalidArgument for samples of different sizes.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

// 95% Wilson score interval of k successes in n trials.
Estimate wilson_interval(int64_t k, int64_t n);

}  // namespace palign::bench
