// Rewards-in-Context and MODPO: the scores-in-the-prompt format by hand, MODPO's difference and loss by hand and its
// gradient against a central difference, the margin of the other objectives against the reward's own scores, the
// trainers end to end on the fixture, and bad inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/scoring/reward_model.h"
#include "palign/scoring/rewards_in_context.h"
#include "palign/training/policy_trainer.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;
namespace fs = std::filesystem;

namespace {

std::vector<scoring::PreferenceRecord> records_of(const std::string& dimension) {
  std::vector<scoring::PreferenceRecord> out;
  for (const char* p : {"Tell me", "Say something", "A story", "Why so", "Go on", "What now"}) {
    scoring::PreferenceRecord r;
    r.prompt = p;
    r.chosen = " ha ha funny";
    r.rejected = " a dull report";
    r.dimension = dimension;
    out.push_back(r);
  }
  return out;
}

PolicyTrainOptions quick(PolicyLoss loss) {
  PolicyTrainOptions o;
  o.loss = loss;
  o.objectives = test::hf_model("llama_rm_multi");
  o.fit.epochs = 2;
  o.fit.batch = 2;
  o.fit.valid_share = 0;
  o.fit.progress = false;
  return o;
}

}  // namespace

TEST(Ric, ScoresInThePromptByHand) {
  EXPECT_EQ(scoring::reward_prompt("Tell me", {"humour", "length"}, {0.54, -1.26}),
            "<humour 0.5> <length -1.3> Tell me");
  EXPECT_EQ(scoring::reward_prompt("Q", {"a"}, {-0.04}), "<a 0.0> Q");  // never "-0.0"
  EXPECT_EQ(scoring::reward_prompt("Q", {}, {}), "Q");
  EXPECT_EQ(error_code_of([] { scoring::reward_prompt("Q", {"a"}, {}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([] { scoring::reward_prompt("Q", {"a"}, {NAN}); }), ErrorCode::kInvalidArgument);
}

TEST(Modpo, DifferenceAndLossByHandAndItsGradient) {
  // h = (−3 − (−4)) − (−5 − (−4.5)) = 1.5; d = (0.1 · 1.5 − 0.3) / 0.5 = −0.3; loss = log(1 + e^0.3).
  const auto t = [](double v) { return at::tensor({v}, at::kDouble); };
  const at::Tensor d = modpo_difference(t(-3), t(-5), t(-4), t(-4.5), t(0.5), t(0.3), 0.1);
  EXPECT_NEAR(d.item<double>(), -0.3, 1e-12);
  const double loss = policy_pair_loss(PolicyLoss::kModpo, d, 0.1, 0).item<double>();
  EXPECT_NEAR(loss, std::log1p(std::exp(0.3)), 1e-12);
  // With w_k = 1 and no margin it is dpo's d.
  const at::Tensor dpo = policy_difference(PolicyLoss::kDpo, t(-3), t(-5), t(-4), t(-4.5), t(1), t(1), 0.1);
  EXPECT_NEAR(modpo_difference(t(-3), t(-5), t(-4), t(-4.5), t(1), t(0), 0.1).item<double>(), dpo.item<double>(),
              1e-15);
  // d loss / d log π(y_c): autograd against a central difference.
  const auto loss_at = [&](const at::Tensor& c) {
    return policy_pair_loss(PolicyLoss::kModpo, modpo_difference(c, t(-5), t(-4), t(-4.5), t(0.5), t(0.3), 0.1), 0.1,
                            0);
  };
  at::Tensor c = t(-3).requires_grad_();
  loss_at(c).sum().backward();
  const double eps = 1e-6;
  const double numeric = (loss_at(t(-3 + eps)).item<double>() - loss_at(t(-3 - eps)).item<double>()) / (2 * eps);
  const double analytic = -1.0 / (1.0 + std::exp(-0.3)) * 0.1 / 0.5;  // −σ(−d) · β / w_k
  std::printf("modpo d loss/d log pi(y_c): autograd %.10f, central difference %.10f, by hand %.10f\n",
              c.grad().item<double>(), numeric, analytic);
  EXPECT_NEAR(c.grad().item<double>(), numeric, 1e-8);
  EXPECT_NEAR(c.grad().item<double>(), analytic, 1e-12);
}

TEST(Modpo, MarginIsTheOtherObjectivesWeightedScoreDifference) {
  const auto records = records_of("helpful");
  PolicyTrainOptions o = quick(PolicyLoss::kModpo);
  o.weights = "helpful=0.6,concise=0.3,formal=-0.1";
  std::vector<const scoring::PreferenceRecord*> ptrs;
  for (const auto& r : records) ptrs.push_back(&r);
  const auto [weight, margin] = modpo_weights(ptrs, o);
  const auto reward = scoring::RewardModel::load(o.objectives);
  ASSERT_EQ(reward->labels()[0], "helpful");
  double worst = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto c = reward->score(records[i].prompt, records[i].chosen);
    const auto r = reward->score(records[i].prompt, records[i].rejected);
    const double expected = 0.3 * (c[1] - r[1]) - 0.1 * (c[2] - r[2]);  // humorous weighs 0; helpful is the pair's own
    EXPECT_EQ(weight[static_cast<int64_t>(i)].item<double>(), 0.6);
    worst = std::max(worst, std::abs(margin[static_cast<int64_t>(i)].item<double>() - expected));
  }
  std::printf("modpo margins against the reward's scores: max |diff| %.3g\n", worst);
  EXPECT_LT(worst, 1e-12);
  for (const char* bad : {"helpful=0,concise=1", "nosuch=1", "helpful", "helpful=nan"}) {
    o.weights = bad;
    EXPECT_EQ(error_code_of([&] { modpo_weights(ptrs, o); }), ErrorCode::kInvalidArgument) << bad;
  }
  o.weights = "helpful=1";
  const auto other = records_of("funny");
  std::vector<const scoring::PreferenceRecord*> other_ptrs = {&other[0]};
  EXPECT_EQ(error_code_of([&] { modpo_weights(other_ptrs, o); }), ErrorCode::kInvalidArgument);
}

TEST(RicModpo, TrainEndToEndAndRefuseWhatTheyCannotUse) {
  const fs::path model = test::hf_model("llama");
  const test::TempDir out("ric_modpo");
  const auto ric = train_policy(records_of("helpful"), model, out / "ric", quick(PolicyLoss::kRic));
  EXPECT_EQ(ric.n_pairs, 12);  // every chosen and rejected response is a training row
  const auto manifest = read_json_file(out / "ric" / "palign_policy.json", "test");
  EXPECT_EQ(manifest.at("method"), "ric");
  const auto labels = manifest.at("ric").at("labels").get<std::vector<std::string>>();
  EXPECT_EQ(labels, scoring::RewardModel::load(test::hf_model("llama_rm_multi"))->labels());
  for (size_t k = 0; k < labels.size(); ++k) {
    EXPECT_LE(manifest["ric"]["p10"][k].get<double>(), manifest["ric"]["p50"][k].get<double>());
    EXPECT_LE(manifest["ric"]["p50"][k].get<double>(), manifest["ric"]["p90"][k].get<double>());
  }
  PolicyTrainOptions m = quick(PolicyLoss::kModpo);
  m.weights = "helpful=0.7,concise=0.3";
  const auto modpo = train_policy(records_of("helpful"), model, out / "modpo", m);
  std::printf("modpo on the fixture: %lld steps, train accuracy %.2f\n", static_cast<long long>(modpo.fit.steps),
              modpo.fit.train_accuracy);
  EXPECT_GT(modpo.fit.steps, 0);
  EXPECT_EQ(read_json_file(out / "modpo" / "palign_policy.json", "test").at("method"), "modpo");
  PolicyTrainOptions bad = quick(PolicyLoss::kRic);
  bad.objectives.clear();
  EXPECT_FALSE(bad.validate().empty());
  EXPECT_EQ(error_code_of([&] { train_policy(records_of("helpful"), model, out / "x", bad); }),
            ErrorCode::kInvalidArgument);
  bad = quick(PolicyLoss::kModpo);  // no weights
  EXPECT_EQ(error_code_of([&] { train_policy(records_of("helpful"), model, out / "x", bad); }),
            ErrorCode::kInvalidArgument);
  bad.weights = "helpful=1";
  bad.objectives = out / "nothing";
  EXPECT_EQ(error_code_of([&] { train_policy(records_of("helpful"), model, out / "x", bad); }), ErrorCode::kNotFound);
}
