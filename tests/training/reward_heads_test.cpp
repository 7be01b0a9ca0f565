// Personalized reward heads: every objective's gradient against central finite differences, recovery of planted
// structure (PAL prototypes, VPL user types, linear per-user weights, PRM two-type population), save/load identity,
// determinism, and the bad-input paths.
#include "palign/training/reward_heads.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

#include "palign/base/error.h"
#include "palign/scoring/personalized_reward.h"
#include "temp_dir.h"

using namespace palign;
using namespace palign::scoring;
using namespace palign::training;
namespace fs = std::filesystem;

namespace {

using palign::test::fresh_dir;

at::Generator gen_of(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Max |autograd gradient − central difference| over every element of params (double tensors).
double max_gradient_error(const std::vector<at::Tensor>& params, const std::function<at::Tensor()>& loss) {
  for (const auto& p : params) p.mutable_grad() = at::Tensor();
  loss().backward();
  double worst = 0;
  const double h = 1e-6;
  at::NoGradGuard no_grad;
  for (const auto& p : params) {
    const at::Tensor flat = p.view({-1});
    const at::Tensor grad = p.grad().reshape({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double old = flat[i].item<double>();
      flat[i] = old + h;
      const double up = loss().item<double>();
      flat[i] = old - h;
      const double down = loss().item<double>();
      flat[i] = old;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - grad[i].item<double>()));
    }
  }
  return worst;
}

at::Tensor rand_param(std::vector<int64_t> shape, at::Generator& gen) {
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kDouble)).requires_grad_();
}

double cosine(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.to(at::kDouble).flatten(), y = b.to(at::kDouble).flatten();
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}

// Pairs from users with true linear rewards weights [U, D]: features N(0, I), the chosen one drawn by
// Bradley–Terry (P(x1 ≻ x2) = σ(w·(x1 − x2))).
PreferencePairs planted_pairs(const at::Tensor& weights, int64_t per_user, at::Generator& gen) {
  const int64_t U = weights.size(0), D = weights.size(1), N = U * per_user;
  const at::Tensor x1 = at::randn({N, D}, gen, at::kFloat), x2 = at::randn({N, D}, gen, at::kFloat);
  const at::Tensor user = at::arange(U, at::kLong).repeat_interleave(per_user);
  const at::Tensor p = at::sigmoid(((x1 - x2) * weights.index_select(0, user)).sum(1));
  const at::Tensor first = (at::rand({N}, gen, at::kFloat) < p).unsqueeze(1);
  PreferencePairs pairs;
  pairs.chosen = at::where(first, x1, x2);
  pairs.rejected = at::where(first, x2, x1);
  pairs.user.assign(user.data_ptr<int64_t>(), user.data_ptr<int64_t>() + N);
  return pairs;
}

// How often a state's reward orders fresh response pairs like the true weights w [D] do.
double agreement(const PersonalizedReward& head, const at::Tensor& state, const at::Tensor& w, at::Generator& gen,
                 int64_t n = 400) {
  const at::Tensor x1 = at::randn({n, w.size(0)}, gen, at::kFloat), x2 = at::randn({n, w.size(0)}, gen, at::kFloat);
  const at::Tensor truth = (x1 - x2).matmul(w) > 0;
  const at::Tensor pred = (head.score(x1, state) - head.score(x2, state)) > 0;
  return (truth == pred).to(at::kDouble).mean().item<double>();
}

// The rows of pairs that belong to user u.
std::pair<at::Tensor, at::Tensor> user_rows(const PreferencePairs& pairs, int64_t u) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < pairs.user.size(); ++i)
    if (pairs.user[i] == u) rows.push_back(static_cast<int64_t>(i));
  const at::Tensor idx = at::tensor(rows, at::kLong);
  return {pairs.chosen.index_select(0, idx), pairs.rejected.index_select(0, idx)};
}

// Two user types with conflicting preferences on the first feature; per_type users each.
at::Tensor two_type_weights(int64_t per_type, int64_t D) {
  at::Tensor a = at::zeros({D}), b = at::zeros({D});
  a[0] = 2.5, a[1] = 2.5, a[2] = 1.0;
  b[0] = -2.5, b[1] = 2.5, b[2] = 1.0;
  return at::cat({a.unsqueeze(0).repeat({per_type, 1}), b.unsqueeze(0).repeat({per_type, 1})});
}

double shared_agreement(const PreferencePairs& pairs, const at::Tensor& w, at::Generator& gen) {
  PreferencePairs anonymous{pairs.chosen, pairs.rejected, {}};
  const auto shared = fit_personalized_reward("linear", anonymous, 1, RewardFitOptions{}).head;
  return agreement(*shared, shared->user_state(0), w, gen);
}

bool throws_code(const std::function<void()>& f, ErrorCode code) {
  try {
    f();
  } catch (const Error& e) {
    std::printf("  error: %s\n", e.what());
    return e.code() == code;
  }
  return false;
}

}  // namespace

TEST(RewardHeads, GradientsMatchFiniteDifferences) {
  at::Generator gen = gen_of(1);
  const auto dbl = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor diff = at::randn({7, 3}, gen, dbl);
  const at::Tensor user = at::tensor(std::vector<int64_t>{0, 1, 2, 3, 1, 0, 3}, at::kLong);

  PrmParams prm{rand_param({3}, gen), rand_param({3, 2}, gen), rand_param({4, 2}, gen)};
  const double prm_err = max_gradient_error({prm.w, prm.mix, prm.embed}, [&] { return prm_loss(prm, diff, user); });

  PalParams pal{rand_param({3, 3}, gen), rand_param({4, 3}, gen), "simplex"};
  double pal_err = max_gradient_error({pal.prototypes, pal.logits}, [&] { return pal_loss(pal, diff, user); });
  pal.mixture = "signed";
  pal_err =
      std::max(pal_err, max_gradient_error({pal.prototypes, pal.logits}, [&] { return pal_loss(pal, diff, user); }));

  const int64_t D = 3, Z = 2, H = 4, G = 2, C = 3, M = 5;
  VplParams v{rand_param({H, 2 * D}, gen), rand_param({H}, gen), rand_param({2 * Z, H}, gen),
              rand_param({2 * Z}, gen),    rand_param({D}, gen), rand_param({D, Z}, gen),
              rand_param({H, D + Z}, gen), rand_param({H}, gen), rand_param({H}, gen)};
  VplBatch b;
  b.ctx_chosen = at::randn({G, C, D}, gen, dbl);
  b.ctx_rejected = at::randn({G, C, D}, gen, dbl);
  b.ctx_mask = at::tensor(std::vector<double>{1, 1, 0, 1, 1, 1}, dbl).view({G, C});
  b.chosen = at::randn({M, D}, gen, dbl);
  b.rejected = at::randn({M, D}, gen, dbl);
  b.group = at::tensor(std::vector<int64_t>{0, 1, 1, 0, 1}, at::kLong);
  b.eps = at::randn({G, Z}, gen, dbl);
  const double vpl_err =
      max_gradient_error({v.enc_w1, v.enc_b1, v.enc_w2, v.enc_b2, v.w, v.mix, v.rew_w1, v.rew_b1, v.out},
                         [&] { return vpl_loss(v, b, 0.3); });

  // linear: the analytic gradient of the MAP objective (used by its Newton steps) against differences of the value.
  const at::Tensor w = at::randn({3}, gen, dbl), prior = at::randn({3}, gen, dbl);
  const at::Tensor grad = linear_map_gradient(w, diff, prior, 0.7);
  double lin_err = 0;
  for (int64_t i = 0; i < 3; ++i) {
    at::Tensor up = w.clone(), down = w.clone();
    up[i] += 1e-6;
    down[i] -= 1e-6;
    const double fd =
        (linear_map_objective(up, diff, prior, 0.7) - linear_map_objective(down, diff, prior, 0.7)) / 2e-6;
    lin_err = std::max(lin_err, std::abs(fd - grad[i].item<double>()));
  }
  // ... and the fit is its minimiser: the gradient vanishes there.
  const double stationarity =
      linear_map_gradient(linear_map_fit(diff, prior, 0.7), diff, prior, 0.7).abs().max().item<double>();

  std::printf("max |grad - finite difference|: prm %.2e pal %.2e vpl %.2e linear %.2e; |grad| at linear fit %.2e\n",
              prm_err, pal_err, vpl_err, lin_err, stationarity);
  EXPECT_LT(prm_err, 1e-7);
  EXPECT_LT(pal_err, 1e-7);
  EXPECT_LT(vpl_err, 1e-7);
  EXPECT_LT(lin_err, 1e-6);
  EXPECT_LT(stationarity, 1e-8);
}

TEST(RewardHeads, LinearRecoversPlantedWeightsAndFallsBackToThePopulation) {
  at::Generator gen = gen_of(2);
  const int64_t U = 20, D = 4;
  const at::Tensor mean = at::tensor(std::vector<float>{2.0f, 1.0f, -1.0f, 0.5f});
  // Users spread around the mean direction, all of the mean's norm (a near-zero planted vector has no direction).
  const at::Tensor raw = mean / mean.norm() + 0.5 * at::randn({U, D}, gen, at::kFloat);
  const at::Tensor weights = mean.norm() * raw / raw.norm(2, 1, true);
  const PreferencePairs pairs = planted_pairs(weights, 64, gen);
  const FittedReward fitted = fit_personalized_reward("linear", pairs, U, RewardFitOptions{});
  const auto& head = fitted.head;
  const FitReport& report = fitted.report;
  double worst = 1, total = 0;
  for (int64_t u = 0; u < U; ++u) {
    const double c = cosine(head->user_state(u), weights[u]);
    worst = std::min(worst, c);
    total += c;
  }
  const at::Tensor generic = head->new_user_state(at::Tensor(), at::Tensor());
  const at::Tensor empty = head->new_user_state(at::zeros({0, D}), at::zeros({0, D}));
  const at::Tensor planted = mean + 0.5 * at::randn({D}, gen, at::kFloat);
  const PreferencePairs fresh = planted_pairs(planted.unsqueeze(0), 64, gen);
  const double new_cos = cosine(head->new_user_state(fresh.chosen, fresh.rejected), planted);
  std::printf(
      "linear: cos(user, planted) mean %.4f min %.4f; new user (64 pairs) %.4f; population vs planted "
      "mean %.4f; valid acc %.3f\n",
      total / U, worst, new_cos, cosine(generic, weights.mean(0)), report.valid_accuracy);
  EXPECT_GT(total / U, 0.95);
  EXPECT_GT(worst, 0.85);
  EXPECT_GT(new_cos, 0.95);
  EXPECT_TRUE(at::equal(generic, empty));
  EXPECT_GT(cosine(generic, weights.mean(0)), 0.95);
  EXPECT_GT(report.valid_accuracy, 0.75);
}

TEST(RewardHeads, PalRecoversPlantedPrototypes) {
  at::Generator gen = gen_of(3);
  const int64_t D = 6, P = 3, pure_per = 4, mixed = 6;
  const at::Tensor planted = at::randn({P, D}, gen, at::kFloat);
  const at::Tensor prototypes = 3.0 * planted / planted.norm(2, 1, true);
  std::vector<int64_t> owner;  // the planted prototype of each pure user
  std::vector<at::Tensor> rows;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t k = 0; k < pure_per; ++k) rows.push_back(prototypes[p]), owner.push_back(p);
  for (int64_t k = 0; k < mixed; ++k) {
    const at::Tensor alpha = at::softmax(at::randn({P}, gen, at::kFloat), 0);
    rows.push_back(alpha.matmul(prototypes));
  }
  const at::Tensor weights = at::stack(rows);
  const PreferencePairs pairs = planted_pairs(weights, 100, gen);
  RewardFitOptions o;
  o.n_prototypes = P;
  o.lr = 0.05;
  o.weight_decay = 0.1;  // decays only the prototypes: it keeps them at the corners of the users' hull
  const FittedReward fitted = fit_personalized_reward("pal", pairs, weights.size(0), o);
  const auto& head = fitted.head;
  const FitReport& report = fitted.report;
  // Learned prototype q's weights: the reward of the unit vectors under the one-hot mixture e_q.
  std::vector<at::Tensor> learned;
  for (int64_t q = 0; q < P; ++q) learned.push_back(head->score(at::eye(D), at::eye(P)[q]));
  // Greedy matching by cosine.
  std::vector<int64_t> match(P, -1);
  std::vector<bool> used(P, false);
  double worst = 1;
  for (int64_t round = 0; round < P; ++round) {
    double best = -2;
    int64_t bp = -1, bq = -1;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < P; ++q)
        if (match[p] < 0 && !used[q] && cosine(prototypes[p], learned[q]) > best)
          best = cosine(prototypes[p], learned[q]), bp = p, bq = q;
    match[bp] = bq;
    used[bq] = true;
    worst = std::min(worst, best);
  }
  int64_t right = 0;
  double weight_on_right = 0;
  for (size_t u = 0; u < owner.size(); ++u) {
    const at::Tensor alpha = head->user_state(static_cast<int64_t>(u));
    right += alpha.argmax().item<int64_t>() == match[owner[u]];
    weight_on_right += alpha[match[owner[u]]].item<double>() / static_cast<double>(owner.size());
  }
  std::printf(
      "pal: worst matched prototype cosine %.4f; pure users on the right prototype %ld/%zu (mean weight "
      "%.3f); valid acc %.3f after %ld epochs\n",
      worst, static_cast<long>(right), owner.size(), weight_on_right, report.valid_accuracy,
      static_cast<long>(report.epochs));
  EXPECT_GT(worst, 0.9);
  EXPECT_EQ(right, static_cast<int64_t>(owner.size()));
  EXPECT_GT(weight_on_right, 0.7);
  // A new pure user recovers their prototype from 30 pairs; with none, the population's mean mixture.
  const PreferencePairs fresh = planted_pairs(prototypes[1].unsqueeze(0), 30, gen);
  const at::Tensor alpha = head->new_user_state(fresh.chosen, fresh.rejected);
  const at::Tensor population = head->new_user_state({}, {});
  std::printf("pal: new pure user's weight on the right prototype %.3f; population mixture sums to %.4f\n",
              alpha[match[1]].item<double>(), population.sum().item<double>());
  EXPECT_EQ(alpha.argmax().item<int64_t>(), match[1]);
  EXPECT_NEAR(population.sum().item<double>(), 1.0, 1e-5);
}

// Users who want the opposite of a prototype lie outside the prototypes' convex hull: with two prototypes and four
// kinds of user (p0, p1, −p0, −p1), simplex weights (a segment between two prototypes) cannot serve all four,
// signed weights can.
TEST(RewardHeads, PalSignedMixtureServesUsersOutsideTheHull) {
  at::Generator gen = gen_of(12);
  const int64_t D = 6, P = 2, per_kind = 5;
  const at::Tensor planted = at::randn({P, D}, gen, at::kFloat);
  const at::Tensor prototypes = 3.0 * planted / planted.norm(2, 1, true);
  std::vector<at::Tensor> rows;
  for (int64_t k = 0; k < per_kind; ++k)
    rows.insert(rows.end(), {prototypes[0], prototypes[1], -prototypes[0], -prototypes[1]});
  const at::Tensor weights = at::stack(rows);
  const PreferencePairs pairs = planted_pairs(weights, 80, gen);
  double mean[2] = {0, 0}, contrarian[2] = {0, 0};
  for (int m = 0; m < 2; ++m) {
    RewardFitOptions o;
    o.n_prototypes = P;
    o.lr = 0.05;
    o.weight_decay = 0.1;
    o.pal_mixture = m == 0 ? "simplex" : "signed";
    const auto head = fit_personalized_reward("pal", pairs, weights.size(0), o).head;
    at::Generator test_gen = gen_of(99);
    for (int64_t u = 0; u < weights.size(0); ++u) {
      const double a = agreement(*head, head->user_state(u), weights[u], test_gen);
      mean[m] += a / static_cast<double>(weights.size(0));
      if (u % 4 >= 2) contrarian[m] += a / static_cast<double>(2 * per_kind);
    }
  }
  std::printf("pal held-out agreement: simplex %.3f (users of -p: %.3f), signed %.3f (users of -p: %.3f)\n", mean[0],
              contrarian[0], mean[1], contrarian[1]);
  EXPECT_GT(mean[1], mean[0] + 0.08);
  EXPECT_GT(mean[1], 0.85);
  EXPECT_GT(contrarian[1], 0.85);
  // A mixture that is neither is refused when fitted.
  RewardFitOptions bad;
  bad.pal_mixture = "convex";
  EXPECT_THROW(fit_personalized_reward("pal", pairs, weights.size(0), bad), Error);
}

TEST(RewardHeads, VplLatentSeparatesPlantedUserTypes) {
  at::Generator gen = gen_of(4);
  const int64_t per_type = 16, D = 6;
  const at::Tensor weights = two_type_weights(per_type, D);
  const PreferencePairs pairs = planted_pairs(weights, 48, gen);
  RewardFitOptions o;
  o.latent_dim = 4;
  o.hidden = 16;
  o.batch = 64;
  o.max_epochs = 200;
  const FittedReward fitted = fit_personalized_reward("vpl", pairs, 2 * per_type, o);
  const auto& head = fitted.head;
  const FitReport& report = fitted.report;
  std::vector<at::Tensor> z;
  for (int64_t u = 0; u < 2 * per_type; ++u) z.push_back(head->user_state(u));
  const at::Tensor za = at::stack(std::vector<at::Tensor>(z.begin(), z.begin() + per_type));
  const at::Tensor zb = at::stack(std::vector<at::Tensor>(z.begin() + per_type, z.end()));
  const at::Tensor ca = za.mean(0), cb = zb.mean(0);
  const double between = (ca - cb).norm().item<double>();
  const double within = 0.5 * ((za - ca).norm(2, 1).mean() + (zb - cb).norm(2, 1).mean()).item<double>();
  double acc_a = 0, acc_b = 0;
  for (int64_t u = 0; u < per_type; ++u) {
    acc_a += agreement(*head, z[u], weights[u], gen) / per_type;
    acc_b += agreement(*head, z[per_type + u], weights[per_type + u], gen) / per_type;
  }
  const double shared_a = shared_agreement(pairs, weights[0], gen);
  const double shared_b = shared_agreement(pairs, weights[per_type], gen);
  // New users, 4 of each type, from 8 labelled pairs each.
  double new_user = 0;
  for (int64_t k = 0; k < 8; ++k) {
    const at::Tensor w = weights[k % 2 == 0 ? 0 : per_type];
    const PreferencePairs fresh = planted_pairs(w.unsqueeze(0), 8, gen);
    new_user += agreement(*head, head->new_user_state(fresh.chosen, fresh.rejected), w, gen) / 8;
  }
  std::printf(
      "vpl: latent between-type distance %.3f, within-type spread %.3f (ratio %.1f); held-out agreement "
      "A %.3f B %.3f vs shared BT A %.3f B %.3f; new users (8 pairs) %.3f; %ld epochs\n",
      between, within, between / within, acc_a, acc_b, shared_a, shared_b, new_user, static_cast<long>(report.epochs));
  EXPECT_GT(between, 4 * within);
  EXPECT_GT(acc_a, 0.8);
  EXPECT_GT(acc_b, 0.8);
  EXPECT_GT(acc_a, shared_a + 0.05);
  EXPECT_GT(acc_b, shared_b + 0.05);
  EXPECT_GT(new_user, std::max(shared_a, shared_b) + 0.03);
  EXPECT_TRUE(at::equal(head->new_user_state({}, {}), at::zeros({4})));
}

TEST(RewardHeads, PrmBeatsASharedModelAndItsGenericUserIsThePopulation) {
  at::Generator gen = gen_of(5);
  const int64_t per_type = 16, D = 6;
  const at::Tensor weights = two_type_weights(per_type, D);
  const PreferencePairs pairs = planted_pairs(weights, 48, gen);
  RewardFitOptions o;
  o.embed_dim = 4;
  o.lr = 0.03;
  const FittedReward fitted = fit_personalized_reward("prm", pairs, 2 * per_type, o);
  const auto& head = fitted.head;
  const FitReport& report = fitted.report;
  double acc = 0;
  for (int64_t u = 0; u < 2 * per_type; ++u)
    acc += agreement(*head, head->user_state(u), weights[u], gen) / static_cast<double>(2 * per_type);
  const double shared =
      0.5 * (shared_agreement(pairs, weights[0], gen) + shared_agreement(pairs, weights[per_type], gen));
  // The generic user's effective weights (rewards of the unit vectors) against the shared BT model's.
  const auto pop =
      fit_personalized_reward("linear", PreferencePairs{pairs.chosen, pairs.rejected, {}}, 1, RewardFitOptions{}).head;
  const at::Tensor generic = head->score(at::eye(D), head->new_user_state({}, {}));
  const double generic_cos = cosine(generic, pop->user_state(0));
  // New users, 4 of each type, from 16 labelled pairs each.
  double new_user = 0;
  for (int64_t k = 0; k < 8; ++k) {
    const at::Tensor w = weights[k % 2 == 0 ? 0 : per_type];
    const PreferencePairs fresh = planted_pairs(w.unsqueeze(0), 16, gen);
    new_user += agreement(*head, head->new_user_state(fresh.chosen, fresh.rejected), w, gen) / 8;
  }
  std::printf(
      "prm: held-out agreement %.3f vs shared BT %.3f; generic vs shared weights cos %.4f; new users (16 "
      "pairs) %.3f; valid acc %.3f after %ld epochs\n",
      acc, shared, generic_cos, new_user, report.valid_accuracy, static_cast<long>(report.epochs));
  EXPECT_GT(acc, shared + 0.1);
  EXPECT_GT(generic_cos, 0.9);
  EXPECT_GT(new_user, shared + 0.05);
}

TEST(RewardHeads, SaveLoadGivesIdenticalScores) {
  at::Generator gen = gen_of(6);
  const int64_t U = 4, D = 5;
  const PreferencePairs pairs = planted_pairs(at::randn({U, D}, gen, at::kFloat), 20, gen);
  const at::Tensor x = at::randn({9, D}, gen, at::kFloat);
  RewardFitOptions o;
  o.max_epochs = 5;
  o.adapt_steps = 20;
  for (const std::string variant : {"prm", "pal", "pal_signed", "vpl", "linear"}) {
    const std::string method = variant == "pal_signed" ? "pal" : variant;
    o.pal_mixture = variant == "pal_signed" ? "signed" : "simplex";
    const auto head = fit_personalized_reward(method, pairs, U, o).head;
    const fs::path dir = fresh_dir(variant);
    head->save(dir);
    auto loaded = load_personalized_reward(dir);
    ASSERT_EQ(loaded->method(), method);
    ASSERT_EQ(loaded->dim(), D);
    ASSERT_EQ(loaded->n_users(), U);
    double worst = 0;
    for (int64_t u = 0; u < U; ++u)
      worst = std::max(
          worst,
          (head->score(x, head->user_state(u)) - loaded->score(x, loaded->user_state(u))).abs().max().item<double>());
    const auto [c, r] = user_rows(pairs, 1);
    for (const auto& [cc, rr] : {std::pair{c, r}, std::pair{at::Tensor(), at::Tensor()}})
      worst = std::max(worst,
                       (head->score(x, head->new_user_state(cc, rr)) - loaded->score(x, loaded->new_user_state(cc, rr)))
                           .abs()
                           .max()
                           .item<double>());
    std::printf("%s: save/load max score difference %g\n", variant.c_str(), worst);
    EXPECT_EQ(worst, 0.0);
    fs::remove_all(dir);
  }
}

TEST(RewardHeads, LoadRejectsBadDirectories) {
  at::Generator gen = gen_of(7);
  const PreferencePairs pairs = planted_pairs(at::randn({2, 3}, gen, at::kFloat), 10, gen);
  const auto head = fit_personalized_reward("linear", pairs, 2, RewardFitOptions{}).head;
  const fs::path dir = fresh_dir("bad");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir / "missing"); }, ErrorCode::kNotFound));
  head->save(dir);
  const std::string good = [&] {
    std::ifstream in(dir / "reward_head.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
    std::ofstream(dir / "reward_head.json", std::ios::trunc) << text;
  };
  rewrite("\"palign.reward_head\"", "\"palign.lm_checkpoint\"");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kInvalidArgument));
  rewrite("\"version\": 1", "\"version\": 2");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kInvalidArgument));
  rewrite("\"linear\"", "\"dpo\"");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kInvalidArgument));
  rewrite("\"dim\": 3", "\"dim\": 4");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kInvalidArgument));
  std::ofstream(dir / "reward_head.json", std::ios::trunc) << "{not json";
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kInvalidArgument));
  rewrite("\"dim\": 3", "\"dim\": 3");
  EXPECT_NO_THROW(load_personalized_reward(dir));
  fs::remove(dir / "reward_head.safetensors");
  EXPECT_TRUE(throws_code([&] { load_personalized_reward(dir); }, ErrorCode::kNotFound));
  fs::remove_all(dir);
}

TEST(RewardHeads, FitIsDeterministicGivenTheSeed) {
  at::Generator gen = gen_of(8);
  const PreferencePairs pairs = planted_pairs(at::randn({3, 4}, gen, at::kFloat), 30, gen);
  RewardFitOptions o;
  o.max_epochs = 10;
  for (const std::string method : {"prm", "pal", "vpl"}) {
    const auto a = fit_personalized_reward(method, pairs, 3, o).head;
    const auto b = fit_personalized_reward(method, pairs, 3, o).head;
    EXPECT_TRUE(at::equal(a->user_state(2), b->user_state(2))) << method;
    o.seed = 1;
    const auto c = fit_personalized_reward(method, pairs, 3, o).head;
    o.seed = 0;
    EXPECT_FALSE(at::equal(a->user_state(2), c->user_state(2))) << method;
  }
}

TEST(RewardHeads, RejectsBadInputs) {
  at::Generator gen = gen_of(9);
  const PreferencePairs good = planted_pairs(at::randn({2, 3}, gen, at::kFloat), 10, gen);
  const auto bad = ErrorCode::kInvalidArgument;
  EXPECT_TRUE(throws_code([&] { fit_personalized_reward("dpo", good, 2, RewardFitOptions{}); }, bad));
  for (const std::string method : {"prm", "pal", "vpl", "linear"}) {
    const RewardFitOptions o{.max_epochs = 2};
    auto fit = [&](PreferencePairs p, int64_t n_users) {
      return [method, p, n_users, o] { fit_personalized_reward(method, p, n_users, o); };
    };
    PreferencePairs p = good;
    p.rejected = good.rejected.slice(1, 0, 2);
    EXPECT_TRUE(throws_code(fit(p, 2), bad)) << "shape mismatch " << method;
    p = good;
    p.chosen = p.chosen.slice(0, 0, 0);
    p.rejected = p.rejected.slice(0, 0, 0);
    p.user.clear();
    EXPECT_TRUE(throws_code(fit(p, 1), bad)) << "empty " << method;
    p = good;
    p.user[3] = 2;
    EXPECT_TRUE(throws_code(fit(p, 2), bad)) << "user out of range " << method;
    p = good;
    p.user.pop_back();
    EXPECT_TRUE(throws_code(fit(p, 2), bad)) << "user count " << method;
    p = good;
    p.rejected = p.chosen.clone();
    EXPECT_TRUE(throws_code(fit(p, 2), bad)) << "all identical " << method;
    p = good;
    p.chosen = p.chosen.clone();
    p.chosen[4][1] = std::nanf("");
    EXPECT_TRUE(throws_code(fit(p, 2), bad)) << "NaN " << method;
    EXPECT_TRUE(throws_code([&] { fit_personalized_reward(method, good, 2, RewardFitOptions{.lr = -1}); }, bad))
        << "options " << method;
    p = good;
    p.rejected = p.rejected.clone();
    p.rejected.slice(0, 0, 3).copy_(p.chosen.slice(0, 0, 3));
    const FittedReward fitted = fit_personalized_reward(method, p, 2, o);
    const auto& head = fitted.head;
    const FitReport& report = fitted.report;
    EXPECT_EQ(report.skipped_pairs, 3) << method;
    EXPECT_TRUE(throws_code([&] { head->user_state(2); }, bad)) << method;
    const at::Tensor state = head->new_user_state({}, {});
    EXPECT_TRUE(throws_code([&] { head->score(at::randn({2, 4}), state); }, bad)) << method;
    EXPECT_TRUE(throws_code([&] { head->score(at::randn({2, 3}), at::zeros({state.size(0) + 1})); }, bad)) << method;
    EXPECT_TRUE(throws_code([&] { head->new_user_state(at::ones({2, 3}), at::ones({2, 3})); }, bad)) << method;
    EXPECT_TRUE(throws_code([&] { head->new_user_state(at::ones({2, 3}), at::ones({3, 3})); }, bad)) << method;
  }
}
