// MaxMin-RLHF's mixture of preference groups: the EM recovers planted groups (assignment accuracy printed), the
// held-out choice of K finds the planted K, the head's scores (a group's, the egalitarian minimum) by hand, a new
// user's group, a save/load round trip, and bad inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "palign/base/error.h"
#include "palign/scoring/personalized_reward.h"
#include "palign/training/reward_heads.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;

namespace {

// 3 groups of 10 users with their own true weights over 6 features; each user labels 60 pairs by Bradley–Terry.
struct Planted {
  PreferencePairs pairs;
  std::vector<int64_t> truth;  // each user's group
  at::Tensor weights;          // [3, 6]
  int64_t n_users = 30;
};

Planted planted(uint64_t seed) {
  Planted p;
  at::manual_seed(static_cast<int64_t>(seed));
  p.weights = at::tensor({2.0, 0.0, 0.0, 1.0, 0.0, 0.0,   //
                          -2.0, 0.0, 0.0, 0.0, 1.5, 0.0,  // the contrarian group: the opposite of group 0's first
                          0.0, 0.0, 2.0, 0.0, 0.0, -1.0},
                         at::kDouble)
                  .reshape({3, 6});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  std::vector<at::Tensor> chosen, rejected;
  for (int64_t u = 0; u < p.n_users; ++u) {
    const int64_t g = u % 3;
    p.truth.push_back(g);
    for (int64_t i = 0; i < 60; ++i) {
      const at::Tensor a = at::randn({6}, at::kDouble), b = at::randn({6}, at::kDouble);
      const double pa = 1.0 / (1.0 + std::exp(-2.0 * (a - b).dot(p.weights[g]).item<double>()));
      const bool a_wins = u01(rng) < pa;
      chosen.push_back(a_wins ? a : b);
      rejected.push_back(a_wins ? b : a);
      p.pairs.user.push_back(u);
      p.pairs.group.push_back(static_cast<int64_t>(chosen.size()) / 5);  // a "prompt" of 5 pairs
    }
  }
  p.pairs.chosen = at::stack(chosen).to(at::kFloat);
  p.pairs.rejected = at::stack(rejected).to(at::kFloat);
  return p;
}

// The share of users in their planted group under the best matching of found groups to planted ones.
double assignment_accuracy(const std::vector<int64_t>& found, const std::vector<int64_t>& truth, int64_t k) {
  std::vector<int64_t> perm(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), 0);
  double best = 0;
  do {
    int64_t right = 0;
    for (size_t u = 0; u < truth.size(); ++u) right += found[u] < k && perm[static_cast<size_t>(found[u])] == truth[u];
    best = std::max(best, static_cast<double>(right) / static_cast<double>(truth.size()));
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

}  // namespace

TEST(Maxmin, EmRecoversPlantedGroups) {
  const Planted p = planted(5);
  const at::Tensor diff = (p.pairs.chosen - p.pairs.rejected).to(at::kDouble);
  const MaxminEm em = maxmin_em(diff, p.pairs.user, p.n_users, 3, 1.0, 50, 4, 0);
  const double accuracy = assignment_accuracy(em.assignment, p.truth, 3);
  std::printf(
      "maxmin EM, 3 planted groups of 10 users x 60 pairs: assignment accuracy %.3f after %lld rounds, "
      "log-likelihood %.1f\n",
      accuracy, static_cast<long long>(em.iterations), em.loglik);
  EXPECT_GE(accuracy, 0.95);
  // Each found head points the way of its planted group's weights.
  double worst_cos = 1;
  for (int64_t k = 0; k < 3; ++k) {
    double best = -1;
    for (int64_t g = 0; g < 3; ++g)
      best = std::max(best, at::cosine_similarity(em.heads[k], p.weights[g], 0).item<double>());
    worst_cos = std::min(worst_cos, best);
  }
  std::printf("maxmin EM: every head's cosine to its nearest planted weights >= %.3f\n", worst_cos);
  EXPECT_GT(worst_cos, 0.9);
  // One group is one Bradley–Terry fit of all pairs: the EM's log-likelihood can only be lower.
  const MaxminEm one = maxmin_em(diff, p.pairs.user, p.n_users, 1, 1.0, 50, 1, 0);
  EXPECT_LT(one.loglik, em.loglik);
  EXPECT_TRUE(std::all_of(one.assignment.begin(), one.assignment.end(), [](int64_t g) { return g == 0; }));
}

TEST(Maxmin, HeldOutPairsChooseThePlantedNumberOfGroups) {
  const Planted p = planted(9);
  RewardFitOptions o;
  o.max_groups = 5;
  const FittedReward fit = fit_personalized_reward("maxmin", p.pairs, p.n_users, o);
  std::printf("maxmin held-out loss by K:");
  for (size_t k = 0; k < fit.report.valid_loss_by_groups.size(); ++k)
    std::printf(" K=%zu %.4f", k + 1, fit.report.valid_loss_by_groups[k]);
  std::printf("; chose K=%lld, held-out accuracy %.3f\n", static_cast<long long>(fit.report.groups),
              fit.report.valid_accuracy);
  EXPECT_EQ(fit.report.groups, 3);
  EXPECT_EQ(fit.report.valid_loss_by_groups.size(), 5u);
  EXPECT_GT(fit.report.valid_accuracy, 0.75);
  std::vector<int64_t> found;
  for (int64_t u = 0; u < p.n_users; ++u) found.push_back(fit.head->user_state(u).argmax().item<int64_t>());
  EXPECT_GE(assignment_accuracy(found, p.truth, 3), 0.95);
}

TEST(Maxmin, ScoresAreAGroupsHeadOrTheEgalitarianMinimum) {
  const at::Tensor heads = at::tensor({1.0f, 0.0f, -1.0f, 2.0f}).reshape({2, 2});
  const auto head = scoring::make_maxmin_reward({.heads = heads, .assignment = at::tensor({1, 0, 1}, at::kLong)});
  const at::Tensor x = at::tensor({3.0f, 1.0f, -1.0f, 1.0f}).reshape({2, 2});
  // Group 0: x·(1, 0) = (3, −1); group 1: x·(−1, 2) = (−1, 3); the minimum: (−1, −1).
  EXPECT_TRUE(at::equal(head->score(x, head->user_state(1)), at::tensor({3.0f, -1.0f})));
  EXPECT_TRUE(at::equal(head->score(x, head->user_state(0)), at::tensor({-1.0f, 3.0f})));
  const at::Tensor generic = head->new_user_state({}, {});
  EXPECT_TRUE(at::equal(generic, at::zeros({2})));
  EXPECT_TRUE(at::equal(head->score(x, generic), at::tensor({-1.0f, -1.0f})));
  // A new user preferring the second feature: group 1's head explains it (log σ(2) + ... beats log σ(0)).
  const at::Tensor c = at::tensor({0.0f, 1.0f, 0.0f, 2.0f}).reshape({2, 2}), r = at::zeros({2, 2});
  EXPECT_EQ(head->new_user_state(c, r).argmax().item<int64_t>(), 1);

  const test::TempDir dir("maxmin_head");
  head->save(dir.path());
  const auto loaded = scoring::load_personalized_reward(dir.path());
  EXPECT_EQ(loaded->method(), "maxmin");
  EXPECT_EQ(loaded->n_users(), 3);
  for (int64_t u = 0; u < 3; ++u) EXPECT_TRUE(at::equal(loaded->user_state(u), head->user_state(u)));
  EXPECT_TRUE(at::equal(loaded->score(x, generic), head->score(x, generic)));

  EXPECT_EQ(error_code_of([&] {
              scoring::make_maxmin_reward({.heads = heads, .assignment = at::tensor({0, 2}, at::kLong)});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { head->user_state(3); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { head->score(x, at::zeros({3})); }), ErrorCode::kInvalidArgument);
}

TEST(Maxmin, BadInputsAreClearErrors) {
  const Planted p = planted(1);
  const at::Tensor diff = p.pairs.chosen - p.pairs.rejected;
  EXPECT_EQ(error_code_of([&] { maxmin_em(diff, p.pairs.user, p.n_users, 0, 1.0, 5, 1, 0); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { maxmin_em(diff, {0, 1}, p.n_users, 2, 1.0, 5, 1, 0); }), ErrorCode::kInvalidArgument);
  for (auto bad : std::vector<std::function<void(RewardFitOptions&)>>{
           [](auto& o) { o.groups = -1; }, [](auto& o) { o.max_groups = 0; }, [](auto& o) { o.em_restarts = 0; }}) {
    RewardFitOptions o;
    bad(o);
    EXPECT_EQ(error_code_of([&] { fit_personalized_reward("maxmin", p.pairs, p.n_users, o); }),
              ErrorCode::kInvalidArgument);
  }
}
