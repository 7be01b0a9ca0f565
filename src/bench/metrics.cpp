// Bench statistics (see metrics.h). Bootstrap: Efron & Tibshirani 1993, percentile intervals.
#include "palign/bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "palign/base/error.h"

namespace palign::bench {

namespace {
double mean_of(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

template <typename Stat>
Estimate bootstrap(const std::vector<double>& xs, uint64_t seed, int resamples, Stat stat) {
  PALIGN_CHECK(!xs.empty(), ErrorCode::kInvalidArgument, "[bench.metrics] cannot estimate from an empty sample");
  PALIGN_CHECK(resamples >= 10, ErrorCode::kInvalidArgument, "[bench.metrics] need at least 10 bootstrap resamples");
  Estimate e;
  e.n = static_cast<int64_t>(xs.size());
  e.value = stat(xs);
  std::mt19937_64 rng(seed);
  std::vector<double> stats, sample(xs.size());
  stats.reserve(resamples);
  for (int r = 0; r < resamples; ++r) {
    for (auto& s : sample) s = xs[rng() % xs.size()];
    stats.push_back(stat(sample));
  }
  std::sort(stats.begin(), stats.end());
  auto pct = [&](double q) {
    const double pos = q * (stats.size() - 1);
    const size_t i = static_cast<size_t>(pos);
    const double frac = pos - i;
    return i + 1 < stats.size() ? stats[i] * (1 - frac) + stats[i + 1] * frac : stats[i];
  };
  e.lo = pct(0.025);
  e.hi = pct(0.975);
  return e;
}
}  // namespace

Estimate bootstrap_mean(const std::vector<double>& xs, uint64_t seed, int resamples) {
  return bootstrap(xs, seed, resamples, mean_of);
}

double worst_decile_mean(std::vector<double> xs) {
  PALIGN_CHECK(!xs.empty(), ErrorCode::kInvalidArgument, "[bench.metrics] empty sample");
  std::sort(xs.begin(), xs.end());
  const size_t k = std::max<size_t>(1, xs.size() / 10);
  double s = 0;
  for (size_t i = 0; i < k; ++i) s += xs[i];
  return s / static_cast<double>(k);
}

Estimate bootstrap_worst_decile(const std::vector<double>& xs, uint64_t seed, int resamples) {
  return bootstrap(xs, seed, resamples, [](const std::vector<double>& v) { return worst_decile_mean(v); });
}

Estimate win_rate(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed, int resamples) {
  PALIGN_CHECK(a.size() == b.size(), ErrorCode::kInvalidArgument, "[bench.metrics] win_rate needs paired samples (",
               a.size(), " vs ", b.size(), ")");
  std::vector<double> wins(a.size());
  for (size_t i = 0; i < a.size(); ++i) wins[i] = a[i] > b[i] ? 1.0 : a[i] < b[i] ? 0.0 : 0.5;
  return bootstrap_mean(wins, seed, resamples);
}

double oracle_gain_share(double method, double base, double oracle) {
  const double gain = oracle - base;
  if (!(std::abs(gain) > 1e-12)) return std::numeric_limits<double>::quiet_NaN();
  return (method - base) / gain;
}

Estimate wilson_interval(int64_t k, int64_t n) {
  PALIGN_CHECK(n > 0 && k >= 0 && k <= n, ErrorCode::kInvalidArgument, "[bench.metrics] wilson_interval needs 0 <= k <= n, n > 0");
  const double z = 1.959963984540054, p = double(k) / n, z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
  return {p, centre - half, centre + half, n};
}

}  // namespace palign::bench
