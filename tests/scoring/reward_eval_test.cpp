// Reward evaluation on held-out pairs: the two-stage bootstrap on hand-computed groups, evaluate_reward against
// scoring each pair one by one, and its bad inputs.
#include "palign/scoring/reward_eval.h"

#include <gtest/gtest.h>

#include "palign/base/error.h"
#include "test_util.h"

using namespace palign;
using namespace palign::scoring;
using palign::test::error_code_of;

TEST(RewardEval, GroupedBootstrapOnHandComputedGroups) {
  const Accuracy a = grouped_bootstrap({{1, 1}, {0}, {}}, 1);
  std::printf("{1,1},{0}: %.4f [%.4f, %.4f] over %lld pairs\n", a.value, a.lo, a.hi, static_cast<long long>(a.pairs));
  EXPECT_DOUBLE_EQ(a.value, 2.0 / 3.0);
  EXPECT_EQ(a.pairs, 3);
  EXPECT_LE(a.lo, a.value);
  EXPECT_GE(a.hi, a.value);
  EXPECT_DOUBLE_EQ(a.lo, 0.0);  // a resample of the second user alone scores 0
  EXPECT_DOUBLE_EQ(a.hi, 1.0);
  const Accuracy all = grouped_bootstrap({{1, 1, 1}}, 2);
  EXPECT_EQ(all.lo, 1.0);
  EXPECT_EQ(all.hi, 1.0);
  EXPECT_EQ(error_code_of([] { grouped_bootstrap({{}}, 1); }), ErrorCode::kInvalidArgument);
}

TEST(RewardEval, EqualsScoringEachPairAndGroupsByDimensionAndUser) {
  const auto reward = RewardModel::load(test::hf_model("llama_rm_multi"));
  const auto labels = reward->labels();
  ASSERT_GT(labels.size(), 1u);
  std::vector<PreferenceRecord> pairs;
  const char* responses[] = {" a cat", " the dog ran far", " sun!", " rain and code", " bread", " love it"};
  for (int i = 0; i < 6; ++i) {
    PreferenceRecord p;
    p.prompt = "Tell me";
    p.chosen = responses[i];
    p.rejected = responses[(i + 1) % 6];
    p.user_id = i % 2 ? "u1" : "u0";
    p.dimension = labels[static_cast<size_t>(i % 3) % labels.size()];
    pairs.push_back(p);
  }
  int64_t calls = 0;
  const RewardEval e = evaluate_reward(*reward, pairs, 0, [&](int64_t done, int64_t total) {
    EXPECT_EQ(done, ++calls);
    EXPECT_EQ(total, 6);
  });
  std::map<std::string, std::pair<double, int>> dims, users;
  double sum = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const size_t k = static_cast<size_t>(std::find(labels.begin(), labels.end(), pairs[i].dimension) - labels.begin());
    const double c = reward->score(pairs[i].prompt, pairs[i].chosen)[k],
                 r = reward->score(pairs[i].prompt, pairs[i].rejected)[k];
    const double x = c > r ? 1.0 : c < r ? 0.0 : 0.5;
    EXPECT_EQ(e.correct[i], x) << "pair " << i;  // one scoring call computes both sides
    sum += x;
    dims[pairs[i].dimension].first += x, ++dims[pairs[i].dimension].second;
    users[pairs[i].user_id].first += x, ++users[pairs[i].user_id].second;
  }
  std::printf("overall %.3f [%.3f, %.3f]\n", e.overall.value, e.overall.lo, e.overall.hi);
  EXPECT_DOUBLE_EQ(e.overall.value, sum / 6);
  EXPECT_EQ(e.overall.pairs, 6);
  ASSERT_EQ(e.by_dimension.size(), dims.size());
  for (const auto& [d, s] : dims) EXPECT_DOUBLE_EQ(e.by_dimension.at(d).value, s.first / s.second) << d;
  ASSERT_EQ(e.by_user.size(), 2u);
  for (const auto& [u, s] : users) EXPECT_DOUBLE_EQ(e.by_user.at(u).value, s.first / s.second) << u;
  EXPECT_EQ(e.unseen_users, 0);  // a classifier is the same for every user

  // A pair without a dimension, or with one the reward does not score, has no label to compare by.
  auto bad = pairs;
  bad[2].dimension.clear();
  EXPECT_EQ(error_code_of([&] { evaluate_reward(*reward, bad); }), ErrorCode::kInvalidArgument);
  bad[2].dimension = "humour_not_a_label";
  EXPECT_EQ(error_code_of([&] { evaluate_reward(*reward, bad); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { evaluate_reward(*reward, {}); }), ErrorCode::kInvalidArgument);
  // A one-label reward ignores the dimension.
  const auto one = RewardModel::load(test::hf_model("llama_rm"));
  EXPECT_EQ(evaluate_reward(*one, bad).overall.pairs, 6);
}
