#include "palign/users/online_model.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>
#include <utility>

#include "palign/base/error.h"
#include "palign/base/rng.h"

namespace palign::users {

namespace {

using Vec = std::vector<double>;

double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }
// log(1 + e^x) without overflow.
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// y = A x, A [k, k] row-major.
Vec mat_vec(const Vec& a, const Vec& x) {
  const size_t k = x.size();
  Vec y(k, 0.0);
  for (size_t i = 0; i < k; ++i) {
    double s = 0;
    for (size_t j = 0; j < k; ++j) s += a[i * k + j] * x[j];
    y[i] = s;
  }
  return y;
}

// The lower Cholesky factor of a symmetric [k, k] matrix; false when it is not positive definite.
bool cholesky(const Vec& a, size_t k, Vec& l) {
  l.assign(k * k, 0.0);
  for (size_t j = 0; j < k; ++j) {
    double d = a[j * k + j];
    for (size_t p = 0; p < j; ++p) d -= l[j * k + p] * l[j * k + p];
    if (!(d > 0) || !std::isfinite(d)) return false;
    l[j * k + j] = std::sqrt(d);
    for (size_t i = j + 1; i < k; ++i) {
      double s = a[i * k + j];
      for (size_t p = 0; p < j; ++p) s -= l[i * k + p] * l[j * k + p];
      l[i * k + j] = s / l[j * k + j];
    }
  }
  return true;
}

// Solves L Lᵀ x = b.
Vec cholesky_solve(const Vec& l, const Vec& b) {
  const size_t k = b.size();
  Vec y(b);
  for (size_t i = 0; i < k; ++i) {
    for (size_t p = 0; p < i; ++p) y[i] -= l[i * k + p] * y[p];
    y[i] /= l[i * k + i];
  }
  for (size_t i = k; i-- > 0;) {
    for (size_t p = i + 1; p < k; ++p) y[i] -= l[p * k + i] * y[p];
    y[i] /= l[i * k + i];
  }
  return y;
}

// The inverse of a symmetric positive definite matrix from its Cholesky factor, symmetrised.
Vec cholesky_inverse(const Vec& l, size_t k) {
  Vec inv(k * k);
  for (size_t j = 0; j < k; ++j) {
    Vec e(k, 0.0);
    e[j] = 1.0;
    const Vec col = cholesky_solve(l, e);
    for (size_t i = 0; i < k; ++i) inv[i * k + j] = col[i];
  }
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < i; ++j) inv[i * k + j] = inv[j * k + i] = 0.5 * (inv[i * k + j] + inv[j * k + i]);
  return inv;
}

void check_names(const std::vector<std::string>& names) {
  PALIGN_CHECK(!names.empty(), ErrorCode::kInvalidArgument, "[users.online] no dimensions to weigh");
  std::set<std::string> seen;
  for (const auto& n : names)
    PALIGN_CHECK(!n.empty() && seen.insert(n).second, ErrorCode::kInvalidArgument, "[users.online] dimension '", n,
                 "' is empty or named twice; give each dimension one name");
}

void check_scores(const Vec& v, size_t k, const char* what) {
  PALIGN_CHECK(v.size() == k, ErrorCode::kInvalidArgument, "[users.online] ", what, " has ", v.size(), " scores for ",
               k, " dimensions; score responses with the scorer the user's profile was made with");
  for (double x : v)
    PALIGN_CHECK(std::isfinite(x), ErrorCode::kInvalidArgument, "[users.online] ", what,
                 " has a score that is not finite");
}

// λ² = π/8: σ(x) ≈ Φ(λx).
constexpr double kProbitScale2 = std::numbers::pi / 8.0;

}  // namespace

DimensionWeights gaussian_prior(const std::vector<std::string>& names, const std::vector<double>& mean,
                                const std::vector<double>& covariance) {
  check_names(names);
  const size_t k = names.size();
  PALIGN_CHECK(mean.size() == k, ErrorCode::kInvalidArgument, "[users.online] a prior mean of ", mean.size(),
               " weights for ", k, " dimensions");
  PALIGN_CHECK(covariance.size() == k * k, ErrorCode::kInvalidArgument, "[users.online] a prior covariance of ",
               covariance.size(), " entries for ", k, " dimensions (expected ", k * k, ")");
  for (double m : mean)
    PALIGN_CHECK(std::isfinite(m), ErrorCode::kInvalidArgument, "[users.online] the prior mean is not finite");
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j) {
      const double a = covariance[i * k + j], b = covariance[j * k + i];
      PALIGN_CHECK(std::isfinite(a) && std::abs(a - b) <= 1e-9 * (1.0 + std::abs(a)), ErrorCode::kInvalidArgument,
                   "[users.online] the prior covariance is not finite and symmetric (entry ", i, ",", j, ")");
    }
  Vec l;
  PALIGN_CHECK(cholesky(covariance, k, l), ErrorCode::kInvalidArgument,
               "[users.online] the prior covariance is not positive definite; add a small value to its diagonal");
  DimensionWeights w;
  w.names = names;
  w.mean = mean;
  w.covariance = covariance;
  return w;
}

DimensionWeights population_prior(const std::vector<std::string>& names,
                                  const std::vector<std::vector<double>>& user_weights, double shrinkage,
                                  double floor) {
  check_names(names);
  const size_t k = names.size(), u = user_weights.size();
  PALIGN_CHECK(u >= 2, ErrorCode::kInvalidArgument,
               "[users.online] a population prior needs at least 2 users' "
               "weights, got ",
               u);
  PALIGN_CHECK(shrinkage >= 0 && shrinkage <= 1, ErrorCode::kInvalidArgument,
               "[users.online] shrinkage must be in [0, 1], got ", shrinkage);
  PALIGN_CHECK(floor > 0 && std::isfinite(floor), ErrorCode::kInvalidArgument,
               "[users.online] the covariance floor must be a positive number, got ", floor);
  Vec mean(k, 0.0);
  for (const auto& w : user_weights) {
    check_scores(w, k, "a user's weights");
    for (size_t i = 0; i < k; ++i) mean[i] += w[i] / static_cast<double>(u);
  }
  Vec cov(k * k, 0.0);
  for (const auto& w : user_weights)
    for (size_t i = 0; i < k; ++i)
      for (size_t j = 0; j < k; ++j) cov[i * k + j] += (w[i] - mean[i]) * (w[j] - mean[j]) / static_cast<double>(u - 1);
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j) {
      if (i != j) cov[i * k + j] *= 1.0 - shrinkage;
      if (i == j) cov[i * k + j] += floor;
    }
  return gaussian_prior(names, mean, cov);
}

double predictive_preference(const DimensionWeights& posterior, const std::vector<double>& a,
                             const std::vector<double>& b) {
  const size_t k = posterior.mean.size();
  check_scores(a, k, "the first response");
  check_scores(b, k, "the second response");
  Vec d(k);
  for (size_t i = 0; i < k; ++i) d[i] = a[i] - b[i];
  const double m = dot(posterior.mean, d), v = dot(d, mat_vec(posterior.covariance, d));
  return sigmoid(m / std::sqrt(1.0 + kProbitScale2 * v));
}

OnlineUserModel::OnlineUserModel(DimensionWeights prior)
    : prior_(gaussian_prior(prior.names, prior.mean, prior.covariance)), posterior_(prior_) {}

OnlineUserModel::OnlineUserModel(DimensionWeights prior, DimensionWeights posterior, int64_t observations)
    : prior_(std::move(prior)), posterior_(std::move(posterior)), observations_(observations) {
  const size_t k = prior_.names.size();
  PALIGN_CHECK(posterior_.names == prior_.names && posterior_.mean.size() == k &&
                   posterior_.covariance.size() == k * k && prior_.mean.size() == k &&
                   prior_.covariance.size() == k * k,
               ErrorCode::kInvalidArgument, "[users.online] a posterior of other dimensions than its prior");
}

void OnlineUserModel::observe(const std::vector<double>& d) {
  const size_t k = posterior_.mean.size();
  check_scores(d, k, "an observation");
  const Vec u = mat_vec(posterior_.covariance, d);  // Σd
  const double m = dot(posterior_.mean, d), c = std::max(0.0, dot(d, u));
  // s = w · d ~ N(m, c) under the current posterior; the likelihood σ(s) ≈ Φ(λ s). Matching the first two moments of
  // N(m, c) · Φ(λ s) (Φ(z) its normaliser, z = m / sqrt(1/λ² + c)) moves the mean along Σd by r / sqrt(1/λ² + c) and
  // shrinks the variance along it by r (z + r) / (1/λ² + c), r = φ(z) / Φ(z) (the inverse Mills ratio).
  const double scale2 = 1.0 / kProbitScale2 + c, scale = std::sqrt(scale2), z = m / scale;
  // r = φ(z) / Φ(z) = sqrt(2/π) / erfcx(−z / sqrt 2); for z ≪ 0, where Φ underflows, its asymptote −z + 1/(−z) ....
  double r;
  if (z > -30) {
    r = std::exp(-0.5 * z * z) / std::sqrt(2.0 * std::numbers::pi) / (0.5 * std::erfc(-z / std::numbers::sqrt2));
  } else {
    r = -z / (1.0 - 1.0 / (z * z) + 3.0 / (z * z * z * z));
  }
  const double shift = r / scale, shrink = r * (z + r) / scale2;
  for (size_t i = 0; i < k; ++i) posterior_.mean[i] += shift * u[i];
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < k; ++j) posterior_.covariance[i * k + j] -= shrink * u[i] * u[j];
  ++observations_;
}

void OnlineUserModel::observe_choice(const std::vector<double>& chosen,
                                     const std::vector<std::vector<double>>& others) {
  const size_t k = posterior_.mean.size();
  check_scores(chosen, k, "the chosen response");
  for (const auto& o : others) check_scores(o, k, "a response passed over");
  for (const auto& o : others) {
    Vec d(k);
    for (size_t i = 0; i < k; ++i) d[i] = chosen[i] - o[i];
    observe(d);
  }
}

void OnlineUserModel::observe_rating(const std::vector<double>& scores, int rating,
                                     const std::vector<double>& reference) {
  const size_t k = posterior_.mean.size();
  PALIGN_CHECK(rating != 0, ErrorCode::kInvalidArgument,
               "[users.online] a rating is +1 (thumbs up) or -1 (thumbs down), got 0");
  check_scores(scores, k, "the rated response");
  if (!reference.empty()) check_scores(reference, k, "the rating's reference");
  Vec d(k);
  for (size_t i = 0; i < k; ++i)
    d[i] = (rating > 0 ? 1.0 : -1.0) * (scores[i] - (reference.empty() ? 0.0 : reference[i]));
  observe(d);
}

std::vector<double> statement_direction(const std::vector<std::string>& names, const std::string& dimension,
                                        double direction, double strength) {
  const auto it = std::find(names.begin(), names.end(), dimension);
  if (it == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.online] no dimension '", dimension,
                 "' to state a preference on; the user's dimensions are: ", known);
  }
  PALIGN_CHECK(direction != 0 && std::isfinite(direction), ErrorCode::kInvalidArgument,
               "[users.online] a stated preference needs a direction (> 0: more of '", dimension, "', < 0: less)");
  PALIGN_CHECK(strength > 0 && std::isfinite(strength), ErrorCode::kInvalidArgument,
               "[users.online] a stated preference's strength must be a positive number, got ", strength);
  Vec d(names.size(), 0.0);
  d[static_cast<size_t>(it - names.begin())] = (direction > 0 ? 1.0 : -1.0) * strength;
  return d;
}

void OnlineUserModel::observe_statement(const std::string& dimension, double direction, double strength) {
  observe(statement_direction(posterior_.names, dimension, direction, strength));
}

DimensionWeights batch_laplace(const DimensionWeights& prior, const std::vector<std::vector<double>>& observations) {
  const DimensionWeights p = gaussian_prior(prior.names, prior.mean, prior.covariance);
  const size_t k = p.mean.size();
  for (const auto& d : observations) check_scores(d, k, "an observation");
  Vec l;
  cholesky(p.covariance, k, l);
  const Vec precision = cholesky_inverse(l, k);
  auto objective = [&](const Vec& w) {
    Vec diff(k);
    for (size_t i = 0; i < k; ++i) diff[i] = w[i] - p.mean[i];
    double f = 0.5 * dot(diff, mat_vec(precision, diff));
    for (const auto& d : observations) f += softplus(-dot(w, d));
    return f;
  };
  auto hessian_at = [&](const Vec& w) {
    Vec hess = precision;
    for (const auto& d : observations) {
      const double s = dot(w, d), h = sigmoid(s) * sigmoid(-s);
      for (size_t i = 0; i < k; ++i)
        for (size_t j = 0; j < k; ++j) hess[i * k + j] += h * d[i] * d[j];
    }
    return hess;
  };
  Vec w = p.mean;
  double f = objective(w);
  for (int it = 0; it < 200; ++it) {
    Vec diff(k);
    for (size_t i = 0; i < k; ++i) diff[i] = w[i] - p.mean[i];
    Vec g = mat_vec(precision, diff);
    for (const auto& d : observations) {
      const double s = sigmoid(-dot(w, d));
      for (size_t i = 0; i < k; ++i) g[i] -= s * d[i];
    }
    Vec hl;
    PALIGN_ASSERT(cholesky(hessian_at(w), k, hl), "[users.batch_laplace] the Hessian is not positive definite");
    const Vec step = cholesky_solve(hl, g);
    const double decrement = dot(g, step);
    if (decrement < 1e-28) break;
    Vec next(k);
    if (decrement < 1e-10) {
      // Inside the region of quadratic convergence, where the objective's change is below its rounding: full steps.
      for (size_t i = 0; i < k; ++i) w[i] -= step[i];
      f = objective(w);
      continue;
    }
    double a = 1.0;
    for (int ls = 0; ls < 60; ++ls, a *= 0.5) {
      for (size_t i = 0; i < k; ++i) next[i] = w[i] - a * step[i];
      if (objective(next) <= f - 1e-4 * a * decrement) break;
    }
    const double fn = objective(next);
    if (!(fn < f)) break;
    w = next;
    f = fn;
  }
  Vec hl;
  PALIGN_ASSERT(cholesky(hessian_at(w), k, hl), "[users.batch_laplace] the Hessian is not positive definite");
  DimensionWeights out = p;
  out.mean = w;
  out.covariance = cholesky_inverse(hl, k);
  return out;
}

QueryPolicy parse_query_policy(const std::string& name) {
  if (name == "information") return QueryPolicy::kInformation;
  if (name == "variance") return QueryPolicy::kVariance;
  if (name == "thompson") return QueryPolicy::kThompson;
  if (name == "random") return QueryPolicy::kRandom;
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.query] unknown query policy '", name,
               "'; use information, variance, thompson or random");
}

std::string query_policy_name(QueryPolicy policy) {
  switch (policy) {
    case QueryPolicy::kInformation:
      return "information";
    case QueryPolicy::kVariance:
      return "variance";
    case QueryPolicy::kThompson:
      return "thompson";
    case QueryPolicy::kRandom:
      return "random";
  }
  return "?";
}

double expected_information(const DimensionWeights& posterior, const std::vector<double>& a,
                            const std::vector<double>& b) {
  const size_t k = posterior.mean.size();
  Vec d(k);
  for (size_t i = 0; i < k; ++i) d[i] = a[i] - b[i];
  // f = λ w·d ~ N(m, v); the answer is Bernoulli(Φ(f)). Houlsby et al. (2011): H(Φ(m / sqrt(1 + v))) − C / sqrt(v +
  // C²) · exp(−m² / (2 (v + C²))) bits, C² = π ln 2 / 2.
  const double lambda = std::sqrt(kProbitScale2);
  const double m = lambda * dot(posterior.mean, d),
               v = kProbitScale2 * std::max(0.0, dot(d, mat_vec(posterior.covariance, d)));
  const double p = 0.5 * std::erfc(-m / std::sqrt(1.0 + v) / std::numbers::sqrt2);
  auto entropy_bits = [](double q) {
    if (q <= 0 || q >= 1) return 0.0;
    return -(q * std::log2(q) + (1 - q) * std::log2(1 - q));
  };
  const double c2 = std::numbers::pi * std::numbers::ln2 / 2.0;
  const double expected = std::sqrt(c2) / std::sqrt(v + c2) * std::exp(-m * m / (2.0 * (v + c2)));
  return std::max(0.0, entropy_bits(p) - expected) * std::numbers::ln2;
}

int best_candidate(const DimensionWeights& posterior, const std::vector<std::vector<double>>& candidates) {
  const size_t k = posterior.mean.size();
  PALIGN_CHECK(!candidates.empty(), ErrorCode::kInvalidArgument, "[users.query] no candidates to choose from");
  int best = 0;
  double top = 0;
  for (size_t c = 0; c < candidates.size(); ++c) {
    check_scores(candidates[c], k, "a candidate");
    const double r = dot(posterior.mean, candidates[c]);
    if (c == 0 || r > top) best = static_cast<int>(c), top = r;
  }
  return best;
}

QueryPair choose_pair(const DimensionWeights& posterior, const std::vector<std::vector<double>>& candidates,
                      QueryPolicy policy, Rng& rng, int anchor) {
  const size_t k = posterior.mean.size(), n = candidates.size();
  PALIGN_CHECK(n >= 2, ErrorCode::kInvalidArgument, "[users.query] choosing a pair needs at least 2 candidates, got ",
               n);
  PALIGN_CHECK(anchor < static_cast<int>(n), ErrorCode::kInvalidArgument, "[users.query] anchor ", anchor,
               " is not one of the ", n, " candidates");
  for (const auto& c : candidates) check_scores(c, k, "a candidate");
  // Orders a pair: the anchor first when there is one, else the lower index.
  auto ordered = [&](int i, int j, double value) {
    if (anchor >= 0) return QueryPair{anchor, i == anchor ? j : i, value};
    return QueryPair{std::min(i, j), std::max(i, j), value};
  };
  switch (policy) {
    case QueryPolicy::kRandom: {
      const auto i = anchor >= 0 ? static_cast<uint64_t>(anchor) : rng.uniform_int(n);
      auto j = rng.uniform_int(n - 1);
      if (j >= i) ++j;
      return ordered(static_cast<int>(i), static_cast<int>(j), 0);
    }
    case QueryPolicy::kThompson: {
      Vec l;
      PALIGN_ASSERT(cholesky(posterior.covariance, k, l), "[users.query] the posterior is not positive definite");
      auto draw_best = [&](int exclude) {
        Vec z(k), w(posterior.mean);
        for (auto& x : z) x = rng.normal();
        for (size_t i = 0; i < k; ++i)
          for (size_t j = 0; j <= i; ++j) w[i] += l[i * k + j] * z[j];
        int arg = -1;
        double top = 0;
        for (size_t c = 0; c < n; ++c) {
          if (static_cast<int>(c) == exclude) continue;
          const double r = dot(w, candidates[c]);
          if (arg < 0 || r > top) arg = static_cast<int>(c), top = r;
        }
        return arg;
      };
      const int first = anchor >= 0 ? anchor : draw_best(-1);
      int second = first;
      for (int tries = 0; tries < 8 && second == first; ++tries) second = draw_best(-1);
      if (second == first) second = draw_best(first);
      return ordered(first, second, 0);
    }
    case QueryPolicy::kInformation:
    case QueryPolicy::kVariance: {
      QueryPair best;
      bool any = false;
      for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
          if (anchor >= 0 && static_cast<int>(i) != anchor && static_cast<int>(j) != anchor) continue;
          double value;
          if (policy == QueryPolicy::kInformation) {
            value = expected_information(posterior, candidates[i], candidates[j]);
          } else {
            Vec d(k);
            for (size_t q = 0; q < k; ++q) d[q] = candidates[i][q] - candidates[j][q];
            value = dot(d, mat_vec(posterior.covariance, d));
          }
          if (!any || value > best.value) {
            best = ordered(static_cast<int>(i), static_cast<int>(j), value);
            any = true;
          }
        }
      return best;
    }
  }
  return {};
}

}  // namespace palign::users
