// The online user model: one observation solved by hand, one step equal to the batch Laplace fit, 64 events at K = 10
// against the batch refit (means and held-out accuracy), calibration of the predictive probability on simulated users,
// statements and ratings, the information of a pair against Monte Carlo, active queries against random ones, the
// population prior, bad inputs.
#include "palign/users/online_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "test_util.h"

using namespace palign;
using namespace palign::users;
using palign::test::error_code_of;

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<std::string> dims(int k) {
  std::vector<std::string> n;
  for (int i = 0; i < k; ++i) n.push_back("d" + std::to_string(i));
  return n;
}

// A correlated prior over K weights: mean 0.3 on every dimension, covariance A Aᵀ / K + 0.2 I for a random A.
DimensionWeights correlated_prior(int k, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> a(static_cast<size_t>(k * k)), cov(static_cast<size_t>(k * k), 0.0);
  for (auto& x : a) x = rng.normal();
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) s += a[static_cast<size_t>(i * k + p)] * a[static_cast<size_t>(j * k + p)];
      cov[static_cast<size_t>(i * k + j)] = s / k + (i == j ? 0.2 : 0.0);
    }
  return gaussian_prior(dims(k), std::vector<double>(static_cast<size_t>(k), 0.3), cov);
}

// A user's true weights drawn from the prior.
std::vector<double> draw_user(const DimensionWeights& prior, Rng& rng) {
  const size_t k = prior.mean.size();
  // Cholesky by hand (the test's own twin of the model's).
  std::vector<double> l(k * k, 0.0);
  for (size_t j = 0; j < k; ++j) {
    double d = prior.covariance[j * k + j];
    for (size_t p = 0; p < j; ++p) d -= l[j * k + p] * l[j * k + p];
    l[j * k + j] = std::sqrt(d);
    for (size_t i = j + 1; i < k; ++i) {
      double s = prior.covariance[i * k + j];
      for (size_t p = 0; p < j; ++p) s -= l[i * k + p] * l[j * k + p];
      l[i * k + j] = s / l[j * k + j];
    }
  }
  std::vector<double> z(k), w(prior.mean);
  for (auto& x : z) x = rng.normal();
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j <= i; ++j) w[i] += l[i * k + j] * z[j];
  return w;
}

std::vector<double> random_scores(size_t k, Rng& rng) {
  std::vector<double> s(k);
  for (auto& x : s) x = rng.normal();
  return s;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Agreement of the posterior mean's preferences with the true user's on random held-out pairs.
double held_out_accuracy(const std::vector<double>& mean, const std::vector<double>& truth, Rng& rng, int pairs) {
  int agree = 0;
  for (int i = 0; i < pairs; ++i) {
    const auto a = random_scores(truth.size(), rng), b = random_scores(truth.size(), rng);
    const double dm = dot(mean, a) - dot(mean, b), dt = dot(truth, a) - dot(truth, b);
    agree += (dm > 0) == (dt > 0);
  }
  return static_cast<double>(agree) / pairs;
}

}  // namespace

TEST(OnlineModel, OneObservationByHand) {
  // Prior N(0, 1), one observation d = 1, likelihood Φ(λ w), λ² = π/8: z = 0, r = φ(0) / Φ(0) = 2 / sqrt(2π), the
  // mean r / sqrt(1/λ² + 1), the variance 1 − r² / (1/λ² + 1).
  OnlineUserModel model(gaussian_prior({"a"}, {0.0}, {1.0}));
  model.observe({1.0});
  const double r = 2.0 / std::sqrt(2.0 * M_PI), s2 = 8.0 / M_PI + 1.0;
  std::printf("  mean %.12f (by hand %.12f), variance %.12f (by hand %.12f)\n", model.posterior().mean[0],
              r / std::sqrt(s2), model.posterior().covariance[0], 1.0 - r * r / s2);
  EXPECT_NEAR(model.posterior().mean[0], r / std::sqrt(s2), 1e-12);
  EXPECT_NEAR(model.posterior().covariance[0], 1.0 - r * r / s2, 1e-12);
  EXPECT_EQ(model.observations(), 1);
}

TEST(OnlineModel, OneStepMatchesTheMomentsByQuadrature) {
  // The naive twin of one step: along d the posterior of s = w · d is N(m, c) · Φ(λ s) / Z; its mean and variance by
  // quadrature on a fine grid must be μ'·d and dᵀΣ'd of the updated model. Orthogonal directions (in Σ's metric)
  // keep their moments.
  const auto prior = correlated_prior(5, 3);
  const std::vector<std::vector<double>> ds = {
      {1.5, -0.5, 0.25, 2.0, -1.0}, {-3.0, 2.0, 1.0, -2.0, 4.0}, {0.1, 0.0, -0.1, 0.05, 0.0}};
  double worst = 0;
  for (const auto& d : ds) {
    OnlineUserModel model(prior);
    model.observe(d);
    const double m = dot(prior.mean, d);
    double c = 0;
    for (size_t i = 0; i < d.size(); ++i)
      for (size_t j = 0; j < d.size(); ++j) c += d[i] * prior.covariance[i * d.size() + j] * d[j];
    const double lambda = std::sqrt(M_PI / 8.0), sd = std::sqrt(c);
    double z0 = 0, z1 = 0, z2 = 0;
    const int n = 200001;
    for (int i = 0; i < n; ++i) {
      const double s = m + sd * (-12.0 + 24.0 * i / (n - 1));
      const double weight = std::exp(-0.5 * (s - m) * (s - m) / c) * 0.5 * std::erfc(-lambda * s / std::sqrt(2.0));
      z0 += weight, z1 += weight * s, z2 += weight * s * s;
    }
    const double mean = z1 / z0, var = z2 / z0 - mean * mean;
    const double got_mean = dot(model.posterior().mean, d);
    double got_var = 0;
    for (size_t i = 0; i < d.size(); ++i)
      for (size_t j = 0; j < d.size(); ++j) got_var += d[i] * model.posterior().covariance[i * d.size() + j] * d[j];
    std::printf("  along d: mean %.9f (quadrature %.9f), variance %.9f (quadrature %.9f)\n", got_mean, mean, got_var,
                var);
    worst = std::max({worst, std::abs(got_mean - mean), std::abs(got_var - var) / var});
  }
  std::printf("  max difference from quadrature: %.3g\n", worst);
  EXPECT_LT(worst, 1e-6);
}

TEST(OnlineModel, BatchLaplaceByHand) {
  // Prior N(0, 1), one observation d = 1: the mode t solves t = σ(−t), the variance 1 / (1 + σ(t) σ(−t)).
  const auto fit = batch_laplace(gaussian_prior({"a"}, {0.0}, {1.0}), {{1.0}});
  double t = 0.5;
  for (int i = 0; i < 200; ++i) t = sigmoid(-t);  // a contraction: converges to the fixed point
  const double h = sigmoid(t) * sigmoid(-t);
  std::printf("  mode %.12f (by hand %.12f), variance %.12f (by hand %.12f)\n", fit.mean[0], t, fit.covariance[0],
              1.0 / (1.0 + h));
  EXPECT_NEAR(fit.mean[0], t, 1e-12);
  EXPECT_NEAR(fit.covariance[0], 1.0 / (1.0 + h), 1e-12);
  // No observations: the prior itself.
  const auto prior = correlated_prior(4, 2);
  EXPECT_EQ(batch_laplace(prior, {}).mean, prior.mean);
}

TEST(OnlineModel, SixtyFourEventsAgainstTheBatchRefit) {
  // K = 10, 64 pairwise events per user, labels drawn from the BT model of a user drawn from the prior; 40 users.
  const int k = 10, events = 64, users = 40;
  const auto prior = correlated_prior(k, 11);
  Rng rng(5);
  double acc_online = 0, acc_batch = 0, acc_prior = 0, rel = 0, rel_max = 0;
  for (int u = 0; u < users; ++u) {
    const auto truth = draw_user(prior, rng);
    OnlineUserModel model(prior);
    std::vector<std::vector<double>> observations;
    for (int e = 0; e < events; ++e) {
      const auto a = random_scores(k, rng), b = random_scores(k, rng);
      const bool a_wins = rng.bernoulli(sigmoid(dot(truth, a) - dot(truth, b)));
      std::vector<double> d(k);
      for (int i = 0; i < k; ++i) d[i] = a_wins ? a[i] - b[i] : b[i] - a[i];
      model.observe(d);
      observations.push_back(d);
    }
    const auto batch = batch_laplace(prior, observations);
    double num = 0, den = 0;
    for (int i = 0; i < k; ++i) {
      num += std::pow(model.posterior().mean[i] - batch.mean[i], 2);
      den += std::pow(batch.mean[i], 2);
    }
    rel += std::sqrt(num / den) / users;
    rel_max = std::max(rel_max, std::sqrt(num / den));
    Rng eval(100 + u);
    acc_online += held_out_accuracy(model.posterior().mean, truth, eval, 2000) / users;
    Rng eval2(100 + u);
    acc_batch += held_out_accuracy(batch.mean, truth, eval2, 2000) / users;
    Rng eval3(100 + u);
    acc_prior += held_out_accuracy(prior.mean, truth, eval3, 2000) / users;
  }
  std::printf(
      "  K=%d, %d events, %d users: relative |mean online - mean batch| %.4f (max %.4f); held-out accuracy "
      "online %.4f, batch %.4f (difference %.4f), prior alone %.4f\n",
      k, events, users, rel, rel_max, acc_online, acc_batch, acc_online - acc_batch, acc_prior);
  EXPECT_LT(std::abs(acc_online - acc_batch), 0.01);
  EXPECT_LT(rel, 0.25);
  EXPECT_GT(acc_online, acc_prior + 0.05);
}

TEST(OnlineModel, PredictiveProbabilityIsCalibrated) {
  // Users drawn from the prior, 16 events each, then held-out pairs: the predicted P(a ≻ b) against the observed
  // frequency per decile of the prediction (the reliability table).
  const int k = 10;
  const auto prior = correlated_prior(k, 21);
  Rng rng(8);
  std::vector<double> pred_sum(10, 0.0), obs_sum(10, 0.0);
  std::vector<int> count(10, 0);
  for (int u = 0; u < 400; ++u) {
    const auto truth = draw_user(prior, rng);
    OnlineUserModel model(prior);
    for (int e = 0; e < 16; ++e) {
      const auto a = random_scores(k, rng), b = random_scores(k, rng);
      std::vector<double> d(k);
      const bool a_wins = rng.bernoulli(sigmoid(dot(truth, a) - dot(truth, b)));
      for (int i = 0; i < k; ++i) d[i] = a_wins ? a[i] - b[i] : b[i] - a[i];
      model.observe(d);
    }
    for (int q = 0; q < 20; ++q) {
      const auto a = random_scores(k, rng), b = random_scores(k, rng);
      const double p = model.preference(a, b);
      const bool a_wins = rng.bernoulli(sigmoid(dot(truth, a) - dot(truth, b)));
      const int bin = std::min(9, static_cast<int>(p * 10));
      pred_sum[static_cast<size_t>(bin)] += p;
      obs_sum[static_cast<size_t>(bin)] += a_wins;
      ++count[static_cast<size_t>(bin)];
    }
  }
  double ece = 0, total = 0;
  for (int b = 0; b < 10; ++b) total += count[static_cast<size_t>(b)];
  std::printf("  decile  n      predicted  observed\n");
  for (int b = 0; b < 10; ++b) {
    const auto i = static_cast<size_t>(b);
    if (count[i] == 0) continue;
    const double p = pred_sum[i] / count[i], o = obs_sum[i] / count[i];
    std::printf("  %d       %-6d %.3f      %.3f\n", b, count[i], p, o);
    ece += count[i] / total * std::abs(p - o);
  }
  std::printf("  expected calibration error %.4f\n", ece);
  EXPECT_LT(ece, 0.03);
}

TEST(OnlineModel, StatementsAndRatingsMoveTheNamedWeight) {
  const auto prior = gaussian_prior({"length", "humor"}, {0.0, 0.0}, {1.0, 0.5, 0.5, 1.0});
  OnlineUserModel model(prior);
  model.observe_statement("length", -1, 2.0);
  std::printf("  after 'shorter, please': length %.4f, humor %.4f (the prior correlates them)\n",
              model.posterior().mean[0], model.posterior().mean[1]);
  EXPECT_LT(model.posterior().mean[0], -0.1);
  EXPECT_LT(model.posterior().mean[1], 0.0);
  EXPECT_LT(model.posterior().covariance[0], 1.0);
  // A statement of strength s is the observation d = ±s e_k.
  OnlineUserModel twin(prior);
  twin.observe({-2.0, 0.0});
  EXPECT_EQ(twin.posterior().mean, model.posterior().mean);

  OnlineUserModel rated(prior);
  rated.observe_rating({0.0, 2.0}, +1, {0.0, 1.0});
  EXPECT_GT(rated.posterior().mean[1], 0.0);
  OnlineUserModel down(prior);
  down.observe_rating({0.0, 2.0}, -1);
  EXPECT_LT(down.posterior().mean[1], 0.0);
  // A choice among three is two observations.
  OnlineUserModel choice(prior);
  choice.observe_choice({1.0, 0.0}, {{0.0, 0.0}, {0.0, 1.0}});
  EXPECT_EQ(choice.observations(), 2);
  EXPECT_GT(choice.posterior().mean[0], 0.0);
}

TEST(OnlineModel, InformationMatchesMonteCarlo) {
  // The probit approximation of the expected information gain against a Monte Carlo estimate of
  // H(E p) − E H(p), p = σ(w · d), over 200k posterior draws (its approximation error is a few percent).
  const int k = 4;
  const auto prior = correlated_prior(k, 31);
  Rng rng(3);
  double worst = 0;
  for (int t = 0; t < 6; ++t) {
    const auto a = random_scores(k, rng), b = random_scores(k, rng);
    const double approx = expected_information(prior, a, b);
    double mean_p = 0, mean_h = 0;
    const int draws = 200000;
    for (int s = 0; s < draws; ++s) {
      const auto w = draw_user(prior, rng);
      const double p = sigmoid(dot(w, a) - dot(w, b));
      mean_p += p / draws;
      if (p > 0 && p < 1) mean_h += -(p * std::log(p) + (1 - p) * std::log(1 - p)) / draws;
    }
    const double mc = -(mean_p * std::log(mean_p) + (1 - mean_p) * std::log(1 - mean_p)) - mean_h;
    std::printf("  pair %d: approx %.4f nats, Monte Carlo %.4f\n", t, approx, mc);
    worst = std::max(worst, std::abs(approx - mc));
  }
  std::printf("  max |approx - Monte Carlo| %.4f nats\n", worst);
  EXPECT_LT(worst, 0.03);
}

TEST(OnlineModel, ActiveQueriesLearnFasterThanRandomOnes) {
  // Each event: 16 candidate responses; the active policy shows the most informative pair, random a random pair; the
  // simulated user answers by the BT model. The users and their candidates are the same for every policy (paired);
  // held-out accuracy after 16 events of each policy and 64 random ones. Two populations: users spread over all K
  // dimensions (full-rank prior), and users who differ along 2 directions only (a low-rank prior, as personas mixed
  // from a few archetypes are).
  const int k = 10, users = 60;
  auto run = [&](const DimensionWeights& prior, QueryPolicy policy, int events) {
    double acc = 0;
    for (int u = 0; u < users; ++u) {
      Rng world(derive_seed(7, "user" + std::to_string(u))), answers(derive_seed(8, std::to_string(u)));
      Rng choices(derive_seed(9, std::to_string(u)));
      const auto truth = draw_user(prior, world);
      OnlineUserModel model(prior);
      for (int e = 0; e < events; ++e) {
        std::vector<std::vector<double>> candidates;
        for (int c = 0; c < 16; ++c) candidates.push_back(random_scores(k, world));
        const auto pair = choose_pair(model.posterior(), candidates, policy, choices);
        const auto& a = candidates[static_cast<size_t>(pair.first)];
        const auto& b = candidates[static_cast<size_t>(pair.second)];
        const bool a_wins = answers.bernoulli(sigmoid(dot(truth, a) - dot(truth, b)));
        model.observe_choice(a_wins ? a : b, {a_wins ? b : a});
      }
      Rng eval(1000 + u);
      acc += held_out_accuracy(model.posterior().mean, truth, eval, 2000) / users;
    }
    return acc;
  };
  std::vector<double> low(static_cast<size_t>(k * k), 0.0);
  {
    Rng rng(43);
    std::vector<double> a(static_cast<size_t>(k * 2));
    for (auto& x : a) x = rng.normal();
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j)
        low[static_cast<size_t>(i * k + j)] = a[static_cast<size_t>(i * 2)] * a[static_cast<size_t>(j * 2)] +
                                              a[static_cast<size_t>(i * 2 + 1)] * a[static_cast<size_t>(j * 2 + 1)] +
                                              (i == j ? 0.01 : 0.0);
  }
  const DimensionWeights priors[2] = {correlated_prior(k, 41),
                                      gaussian_prior(dims(k), std::vector<double>(k, 0.0), low)};
  const char* names[2] = {"full-rank", "rank-2"};
  double info16[2], random16[2], random64[2];
  for (int p = 0; p < 2; ++p) {
    info16[p] = run(priors[p], QueryPolicy::kInformation, 16);
    random16[p] = run(priors[p], QueryPolicy::kRandom, 16);
    random64[p] = run(priors[p], QueryPolicy::kRandom, 64);
    const double variance16 = run(priors[p], QueryPolicy::kVariance, 16);
    const double thompson16 = run(priors[p], QueryPolicy::kThompson, 16);
    std::printf(
        "  %s population, held-out accuracy: information@16 %.4f, variance@16 %.4f, thompson@16 %.4f, "
        "random@16 %.4f, random@64 %.4f\n",
        names[p], info16[p], variance16, thompson16, random16[p], random64[p]);
  }
  EXPECT_GT(info16[0], random16[0]);
  EXPECT_GT(info16[1], random16[1]);
  // Where users differ along few directions, 16 chosen questions do what 64 random ones do.
  EXPECT_GE(info16[1], random64[1] - 0.01);
}

TEST(OnlineModel, ChoosePairPolicies) {
  const auto prior = gaussian_prior({"a", "b"}, {0.0, 1.0}, {1.0, 0.0, 0.0, 0.01});
  Rng rng(1);
  // Along "a" the user is uncertain, along "b" nearly known: the informative pair differs in "a".
  const std::vector<std::vector<double>> c = {{0.0, 0.0}, {0.0, 3.0}, {2.0, 0.0}};
  // Information: (0, 2) (the model has no idea, m = 0, v = 4) over (1, 2) (v = 4.09 but m = 3: it is sure).
  const auto info = choose_pair(prior, c, QueryPolicy::kInformation, rng);
  EXPECT_EQ(info.first, 0);
  EXPECT_EQ(info.second, 2);
  EXPECT_GT(info.value, 0.0);
  // Variance alone: (1, 2).
  const auto var = choose_pair(prior, c, QueryPolicy::kVariance, rng);
  EXPECT_EQ(var.first, 1);
  EXPECT_NEAR(var.value, 4.0 + 0.09, 1e-12);  // candidates 1 and 2: d = (−2, 3)
  for (int i = 0; i < 20; ++i) {
    const auto r = choose_pair(prior, c, QueryPolicy::kRandom, rng);
    EXPECT_LT(r.first, r.second);
    const auto t = choose_pair(prior, c, QueryPolicy::kThompson, rng);
    EXPECT_LT(t.first, t.second);
    EXPECT_LT(t.second, 3);
  }
  // Anchored at candidate 1 (e.g. the best guess shown beside an alternative): only pairs with it, it first.
  for (const auto policy :
       {QueryPolicy::kInformation, QueryPolicy::kVariance, QueryPolicy::kThompson, QueryPolicy::kRandom}) {
    const auto anchored = choose_pair(prior, c, policy, rng, 1);
    EXPECT_EQ(anchored.first, 1);
    EXPECT_NE(anchored.second, 1);
  }
  EXPECT_EQ(choose_pair(prior, c, QueryPolicy::kInformation, rng, 1).second, 2);  // (1, 2) tells more than (1, 0)
  EXPECT_EQ(best_candidate(prior, c), 1);  // the mean weighs "b" at 1: candidate 1 scores 3
  EXPECT_EQ(error_code_of([&] { choose_pair(prior, c, QueryPolicy::kRandom, rng, 3); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_query_policy("thompson"), QueryPolicy::kThompson);
  EXPECT_EQ(query_policy_name(parse_query_policy("information")), "information");
}

TEST(OnlineModel, PopulationPriorRecoversTheUsers) {
  const auto truth = correlated_prior(3, 51);
  Rng rng(9);
  std::vector<std::vector<double>> users;
  for (int u = 0; u < 20000; ++u) users.push_back(draw_user(truth, rng));
  const auto fitted = population_prior(truth.names, users, 0.0, 1e-9);
  double diff = 0;
  for (size_t i = 0; i < 3; ++i) diff = std::max(diff, std::abs(fitted.mean[i] - truth.mean[i]));
  for (size_t i = 0; i < 9; ++i) diff = std::max(diff, std::abs(fitted.covariance[i] - truth.covariance[i]));
  std::printf("  max |fitted - true| over mean and covariance (20000 users): %.4f\n", diff);
  EXPECT_LT(diff, 0.05);
  // Shrinkage scales the off-diagonal; the floor lifts the diagonal.
  const auto shrunk = population_prior(truth.names, users, 1.0, 0.5);
  EXPECT_EQ(shrunk.covariance[1], 0.0);
  EXPECT_NEAR(shrunk.covariance[0], fitted.covariance[0] + 0.5, 1e-8);
}

TEST(OnlineModel, BadInputs) {
  EXPECT_EQ(error_code_of([] { gaussian_prior({}, {}, {}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { gaussian_prior({"a", "a"}, {0, 0}, {1, 0, 0, 1}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { gaussian_prior({"a"}, {0, 0}, {1}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { gaussian_prior({"a", "b"}, {0, 0}, {1, 2, 2, 1}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { gaussian_prior({"a", "b"}, {0, 0}, {1, 0.5, 0, 1}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { gaussian_prior({"a"}, {NAN}, {1}); }), ErrorCode::kInvalidArgument);
  OnlineUserModel model(gaussian_prior({"a", "b"}, {0, 0}, {1, 0, 0, 1}));
  EXPECT_EQ(error_code_of([&] { model.observe({1.0}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { model.observe({1.0, INFINITY}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { model.observe_rating({1.0, 0.0}, 0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { model.observe_statement("length", -1); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { model.observe_statement("a", 0); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { model.observe_statement("a", 1, -2); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(model.observations(), 0);  // nothing was applied
  Rng rng(1);
  EXPECT_EQ(error_code_of([&] {
              choose_pair(model.posterior(), {{1, 0}}, QueryPolicy::kRandom, rng);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] {
              choose_pair(model.posterior(), {{1, 0}, {1}}, QueryPolicy::kVariance, rng);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { parse_query_policy("smart"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { population_prior({"a"}, {{1.0}}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { population_prior({"a"}, {{1.0}, {2.0}}, 2.0); }), ErrorCode::kInvalidArgument);
}
