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

Grid::Grid(int64_t r, int64_t c) : rows(r), cols(c), sum(static_cast<size_t>(r * c), 0.0), weight(sum) {
  PALIGN_CHECK(r >= 0 && c >= 0, ErrorCode::kInvalidArgument, "[bench.metrics] a grid of ", r, " x ", c, " cells");
}

void Grid::add(int64_t row, int64_t col, double value, double w) {
  PALIGN_CHECK(row >= 0 && row < rows && col >= 0 && col < cols, ErrorCode::kInvalidArgument, "[bench.metrics] cell (",
               row, ", ", col, ") is outside the ", rows, " x ", cols, " grid");
  sum[static_cast<size_t>(row * cols + col)] += w * value;
  weight[static_cast<size_t>(row * cols + col)] += w;
}

double Grid::mean() const {
  double s = 0, w = 0;
  for (size_t i = 0; i < sum.size(); ++i) s += sum[i], w += weight[i];
  return w > 0 ? s / w : std::numeric_limits<double>::quiet_NaN();
}

Estimate bootstrap_grids(const std::vector<const Grid*>& grids,
                         const std::function<double(const std::vector<double>&)>& stat, uint64_t seed, int resamples) {
  PALIGN_CHECK(!grids.empty(), ErrorCode::kInvalidArgument, "[bench.metrics] no grids to estimate from");
  PALIGN_CHECK(resamples >= 10, ErrorCode::kInvalidArgument, "[bench.metrics] need at least 10 bootstrap resamples");
  const int64_t rows = grids[0]->rows, cols = grids[0]->cols;
  for (const Grid* g : grids)
    PALIGN_CHECK(g->rows == rows && g->cols == cols, ErrorCode::kInvalidArgument,
                 "[bench.metrics] paired grids must have one shape: ", g->rows, " x ", g->cols, " vs ", rows, " x ",
                 cols);
  PALIGN_CHECK(rows > 0 && cols > 0, ErrorCode::kInvalidArgument, "[bench.metrics] cannot estimate from an empty grid");
  Estimate e;
  std::vector<double> means;
  for (const Grid* g : grids) means.push_back(g->mean());
  e.value = stat(means);
  e.n = rows;
  std::mt19937_64 rng(seed);
  std::vector<double> row_count(static_cast<size_t>(rows)), col_count(static_cast<size_t>(cols)), stats;
  stats.reserve(static_cast<size_t>(resamples));
  for (int r = 0; r < resamples; ++r) {
    std::fill(row_count.begin(), row_count.end(), 0.0);
    std::fill(col_count.begin(), col_count.end(), 0.0);
    for (int64_t i = 0; i < rows; ++i) row_count[rng() % static_cast<uint64_t>(rows)] += 1;
    for (int64_t j = 0; j < cols; ++j) col_count[rng() % static_cast<uint64_t>(cols)] += 1;
    for (size_t k = 0; k < grids.size(); ++k) {
      const Grid& g = *grids[k];
      double s = 0, w = 0;
      for (int64_t i = 0; i < rows; ++i) {
        if (row_count[i] == 0) continue;
        double rs = 0, rw = 0;
        for (int64_t j = 0; j < cols; ++j) {
          const size_t cell = static_cast<size_t>(i * cols + j);
          rs += col_count[j] * g.sum[cell];
          rw += col_count[j] * g.weight[cell];
        }
        s += row_count[i] * rs;
        w += row_count[i] * rw;
      }
      means[k] = w > 0 ? s / w : std::numeric_limits<double>::quiet_NaN();
    }
    const double v = stat(means);
    if (std::isfinite(v)) stats.push_back(v);
  }
  if (stats.empty()) {
    e.lo = e.hi = std::numeric_limits<double>::quiet_NaN();
    return e;
  }
  std::sort(stats.begin(), stats.end());
  auto pct = [&](double q) {
    const double pos = q * static_cast<double>(stats.size() - 1);
    const auto i = static_cast<size_t>(pos);
    const double frac = pos - static_cast<double>(i);
    return i + 1 < stats.size() ? stats[i] * (1 - frac) + stats[i + 1] * frac : stats[i];
  };
  e.lo = pct(0.025);
  e.hi = pct(0.975);
  return e;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  PALIGN_CHECK(x.size() == y.size(), ErrorCode::kInvalidArgument, "[bench.metrics] pearson needs paired samples (",
               x.size(), " vs ", y.size(), ")");
  if (x.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const double mx = mean_of(x), my = mean_of(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : std::numeric_limits<double>::quiet_NaN();
}

Estimate wilson_interval(int64_t k, int64_t n) {
  PALIGN_CHECK(n > 0 && k >= 0 && k <= n, ErrorCode::kInvalidArgument, "[bench.metrics] wilson_interval needs 0 <= k <= n, n > 0");
  const double z = 1.959963984540054, p = double(k) / n, z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / (1 + z2 / n);
  return {p, centre - half, centre + half, n};
}

}  // namespace palign::bench
