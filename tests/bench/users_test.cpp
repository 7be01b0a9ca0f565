// Simulated users: the seeded generator, reproducibility from the seed, persona structure, the contrarian share,
// label-noise calibration against σ(β·|Δ|), label draws, JSON round trips and bad inputs.
#include "palign/bench/users.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "palign/base/error.h"
#include "palign/bench/rng.h"

using namespace palign;
using namespace palign::bench;

namespace {

constexpr int kDims = 10;

std::vector<std::vector<double>> gaussian_items(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<double>> items(n, std::vector<double>(kDims));
  for (auto& item : items)
    for (double& x : item) x = rng.normal();
  return items;
}

double distance(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

TEST(Rng, FixedSequenceAndMoments) {
  // std::mt19937_64 is fixed by the standard: its 10000th output from the default seed is 9981545732273789042.
  std::mt19937_64 reference;
  reference.discard(9999);
  EXPECT_EQ(reference(), 9981545732273789042ull);
  Rng a(7), b(7), c(8);
  EXPECT_NE(a.normal(), c.normal());
  b.normal();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.normal(), b.normal());
  Rng rng(1);
  const int n = 200000;
  double sum = 0.0, sum_sq = 0.0, u_sum = 0.0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
    const double u = rng.uniform();
    ASSERT_TRUE(u >= 0.0 && u < 1.0);
    u_sum += u;
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  std::printf("Rng: normal mean %.4f var %.4f, uniform mean %.4f over %d draws\n", mean, var, u_sum / n, n);
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(var, 1.0, 0.02);
  EXPECT_NEAR(u_sum / n, 0.5, 5.0 * std::sqrt(1.0 / 12.0 / n));
  for (int i = 0; i < 1000; ++i) ASSERT_LT(rng.uniform_int(3), 3u);
  EXPECT_NE(derive_seed(1, "a"), derive_seed(1, "b"));
  EXPECT_NE(derive_seed(1, "a"), derive_seed(2, "a"));
}

TEST(Population, ReproducibleFromTheSeedAndDifferentAcrossSeeds) {
  const PopulationOptions options{.n_users = 50, .seed = 42};
  const Population a = make_population(kDims, options);
  const Population b = make_population(kDims, options);
  EXPECT_EQ(a.to_json(), b.to_json());
  PopulationOptions other = options;
  other.seed = 43;
  const Population c = make_population(kDims, other);
  int differing = 0;
  for (int i = 0; i < 50; ++i) differing += a.users[i].weights != c.users[i].weights;
  std::printf("seed 42 vs 43: %d of 50 users differ\n", differing);
  EXPECT_EQ(differing, 50);
  EXPECT_EQ(a.users[0].id, "u0000");
  EXPECT_EQ(a.users[49].id, "u0049");
  // The first users do not depend on n_users.
  PopulationOptions more = options;
  more.n_users = 80;
  const Population d = make_population(kDims, more);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(d.users[i].weights, a.users[i].weights);
  for (const auto& u : a.users) {
    double norm_sq = 0.0;
    for (double w : u.weights) norm_sq += w * w;
    EXPECT_NEAR(norm_sq, 1.0, 1e-12) << "normalised weights";
  }
}

TEST(Population, PersonaStructureAndContrarians) {
  const PopulationOptions options{.n_users = 4000, .n_personas = 4, .contrarian_share = 0.2, .seed = 3};
  const Population pop = make_population(kDims, options);
  // Contrarian share: binomial(4000, 0.2), sd 0.0063; allow 4 sd.
  int contrarians = 0;
  std::vector<int> per_persona(options.n_personas, 0);
  for (const auto& u : pop.users) {
    contrarians += u.contrarian;
    per_persona[u.persona]++;
  }
  const double share = static_cast<double>(contrarians) / options.n_users;
  const double share_sd = std::sqrt(0.2 * 0.8 / options.n_users);
  std::printf("contrarian share %.4f (target 0.20 +- %.4f); users per persona %d %d %d %d\n", share, 4 * share_sd,
              per_persona[0], per_persona[1], per_persona[2], per_persona[3]);
  EXPECT_NEAR(share, 0.2, 4 * share_sd);
  for (int c : per_persona) EXPECT_NEAR(c, 1000, 4 * std::sqrt(4000 * 0.25 * 0.75));

  // Same persona (and same contrarian flag) is closer than different personas; mean distances over pairs.
  double within = 0.0, between = 0.0;
  int n_within = 0, n_between = 0;
  for (int i = 0; i < 400; ++i)
    for (int j = i + 1; j < 400; ++j) {
      const auto &u = pop.users[i], &v = pop.users[j];
      if (u.contrarian != v.contrarian) continue;
      const double d = distance(u.weights, v.weights);
      if (u.persona == v.persona) {
        within += d, ++n_within;
      } else {
        between += d, ++n_between;
      }
    }
  within /= n_within;
  between /= n_between;
  std::printf("mean weight distance: same persona %.3f, different personas %.3f\n", within, between);
  EXPECT_LT(within, 0.6 * between);

  // Contrarians dislike what most like: their weights point against the consensus.
  double agree_majority = 0.0, agree_contrarian = 0.0;
  for (const auto& u : pop.users) {
    double dot = 0.0;
    for (int k = 0; k < kDims; ++k) dot += u.weights[k] * pop.consensus[k];
    (u.contrarian ? agree_contrarian : agree_majority) += dot;
  }
  agree_majority /= options.n_users - contrarians;
  agree_contrarian /= contrarians;
  std::printf("mean w . consensus: majority %.3f, contrarians %.3f\n", agree_majority, agree_contrarian);
  EXPECT_GT(agree_majority, 0.0);
  EXPECT_LT(agree_contrarian, 0.0);
}

TEST(Labels, ProbabilityAndOneDraw) {
  const SimulatedUser user{"u", {1.0, -2.0}, 0, false};
  const std::vector<double> a = {1.0, 0.0}, b = {0.0, 0.5};
  // R(a) = 1, R(b) = −1: P = σ(β·2).
  EXPECT_NEAR(utility(user, a), 1.0, 1e-15);
  EXPECT_NEAR(preference_probability(user, a, b, 0.5), 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(preference_probability(user, a, b, 0.0), 0.5, 1e-15);
  EXPECT_EQ(sigmoid(-1000.0), 0.0);
  EXPECT_EQ(sigmoid(1000.0), 1.0);
  // label() draws exactly one uniform and compares it with P.
  Rng r1(5), r2(5);
  for (int i = 0; i < 100; ++i) {
    const bool got = label(user, a, b, 0.5, r1);
    EXPECT_EQ(got, r2.uniform() < preference_probability(user, a, b, 0.5));
  }
  Rng rng(9);
  const int n = 20000;
  int wins = 0;
  for (int i = 0; i < n; ++i) wins += label(user, a, b, 0.5, rng);
  const double p = preference_probability(user, a, b, 0.5);
  std::printf("one pair, %d draws: empirical P(a > b) %.4f, sigma(beta*delta) %.4f\n", n, double(wins) / n, p);
  EXPECT_NEAR(double(wins) / n, p, 1.96 * std::sqrt(p * (1 - p) / n));
}

// Over many random pairs the noisy label agrees with sign(R(a) − R(b)) at a rate whose expectation is the mean of
// σ(β·|Δ|); its sd is sqrt(Σ p_i(1 − p_i)) / n (Poisson-binomial).
struct Calibration {
  int n = 0;
  int agree = 0;
  double expected = 0.0;  // Σ p_i
  double variance = 0.0;  // Σ p_i (1 − p_i)
  double rate() const { return static_cast<double>(agree) / n; }
  double mean_p() const { return expected / n; }
  double half_width_95() const { return 1.96 * std::sqrt(variance) / n; }
  double z() const { return (agree - expected) / std::sqrt(variance); }
};

Calibration calibrate(double beta, uint64_t seed, const std::vector<std::vector<double>>& items) {
  const Population pop = make_population(kDims, {.n_users = 200, .beta = beta, .seed = seed});
  const auto labels = draw_labels(pop, items, /*pairs_per_user=*/100, /*seed=*/seed + 1000);
  Calibration c;
  for (const auto& l : labels) {
    const SimulatedUser& u = pop.users[l.user];
    const double delta = utility(u, items[l.a]) - utility(u, items[l.b]);
    if (delta == 0.0) continue;
    const double p = sigmoid(beta * std::abs(delta));
    c.expected += p;
    c.variance += p * (1 - p);
    c.agree += l.a_wins == (delta > 0.0);
    ++c.n;
  }
  return c;
}

TEST(Labels, NoiseIsCalibrated) {
  const auto items = gaussian_items(500, 11);
  const Calibration c = calibrate(/*beta=*/1.0, /*seed=*/17, items);
  std::printf(
      "beta 1.0: label agreement with the true utility %.4f over %d pairs; mean sigma(beta*|delta|) %.4f, "
      "95%% interval [%.4f, %.4f]\n",
      c.rate(), c.n, c.mean_p(), c.mean_p() - c.half_width_95(), c.mean_p() + c.half_width_95());
  EXPECT_EQ(c.n, 20000);
  EXPECT_NEAR(c.rate(), c.mean_p(), c.half_width_95());
}

// The same check over 20 seeds for each of three betas: about 19 of 20 runs should fall inside their 95% interval
// (at least 15 is required; P(fewer | calibrated) < 0.001), and the pooled deviation should be within 3.29 sd.
TEST(Labels, NoiseIsCalibratedAcrossSeedsAndBetas) {
  const auto items = gaussian_items(500, 12);
  for (double beta : {0.5, 1.0, 3.0}) {
    int inside = 0;
    Calibration pooled;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      const Calibration c = calibrate(beta, seed, items);
      inside += std::abs(c.rate() - c.mean_p()) <= c.half_width_95();
      pooled.n += c.n;
      pooled.agree += c.agree;
      pooled.expected += c.expected;
      pooled.variance += c.variance;
    }
    std::printf(
        "beta %.1f: %d of 20 seeds inside their 95%% interval; pooled agreement %.4f vs mean "
        "sigma(beta*|delta|) %.4f over %d pairs (z = %+.2f)\n",
        beta, inside, pooled.rate(), pooled.mean_p(), pooled.n, pooled.z());
    EXPECT_GE(inside, 15);
    EXPECT_LT(std::abs(pooled.z()), 3.29);
  }
}

TEST(Labels, ReproducibleAndPerUser) {
  const auto items = gaussian_items(50, 1);
  const Population pop = make_population(kDims, {.n_users = 20, .seed = 2});
  const auto a = draw_labels(pop, items, 30, 5);
  const auto b = draw_labels(pop, items, 30, 5);
  const auto c = draw_labels(pop, items, 30, 6);
  int same_c = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].a, b[i].a);
    EXPECT_EQ(a[i].b, b[i].b);
    EXPECT_EQ(a[i].a_wins, b[i].a_wins);
    EXPECT_NE(a[i].a, a[i].b);
    same_c += a[i].a == c[i].a && a[i].b == c[i].b;
  }
  EXPECT_LT(same_c, 10) << "another seed draws other pairs";
  // User 3's labels do not depend on how many users there are.
  const Population fewer = make_population(kDims, {.n_users = 5, .seed = 2});
  const auto d = draw_labels(fewer, items, 30, 5);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(d[3 * 30 + i].a, a[3 * 30 + i].a);
    EXPECT_EQ(d[3 * 30 + i].a_wins, a[3 * 30 + i].a_wins);
  }
}

TEST(Population, JsonRoundTripIsExact) {
  const Population pop = make_population(kDims, {.n_users = 30, .contrarian_share = 0.3, .seed = 99});
  const Population back = Population::from_json(pop.to_json());
  EXPECT_EQ(back.to_json(), pop.to_json());
  for (size_t i = 0; i < pop.users.size(); ++i) EXPECT_EQ(back.users[i].weights, pop.users[i].weights);
  EXPECT_EQ(back.options.seed, 99u);
  EXPECT_THROW(Population::from_json("{\"format\": \"palign.bench.population\", \"version\": 2}"), Error);
  EXPECT_THROW(Population::from_json("[1, 2"), Error);
}

TEST(Population, BadInputsThrowOneLineErrors) {
  auto expect_error = [](auto&& fn) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      std::printf("error: %s\n", e.what());
    }
  };
  expect_error([] { make_population(kDims, {.n_users = 0}); });
  expect_error([] { make_population(kDims, {.n_users = -3}); });
  expect_error([] { make_population(kDims, {.n_personas = 0}); });
  expect_error([] { make_population(0, {}); });
  expect_error([] { make_population(kDims, {.contrarian_share = 1.5}); });
  expect_error([] { make_population(kDims, {.beta = -1.0}); });
  const Population pop = make_population(kDims, {.n_users = 2});
  expect_error([&] { utility(pop.users[0], std::vector<double>(kDims - 1, 0.0)); });
  expect_error([&] { draw_labels(pop, gaussian_items(1, 0), 3, 0); });
  expect_error([&] { draw_labels(pop, {std::vector<double>(kDims), std::vector<double>(3)}, 3, 0); });
}

}  // namespace
