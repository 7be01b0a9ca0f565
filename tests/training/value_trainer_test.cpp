// The prefix value model (CD-FUDGE / VAS): batched rollouts and their prefixes' features against rollouts sampled and
// encoded one at a time, TD(λ) targets against the explicit λ-return sum, a planted linear value recovered by the fit,
// and bad inputs.
#include "palign/training/value_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;

namespace {

// Two rewards of a rollout: how many of its ids are even, and its length (any deterministic function will do).
std::vector<std::vector<double>> even_and_length(int64_t, const std::vector<std::vector<int64_t>>& rollouts) {
  std::vector<std::vector<double>> out;
  for (const auto& ids : rollouts) {
    double even = 0;
    for (int64_t t : ids) even += t % 2 == 0;
    out.push_back({even, static_cast<double>(ids.size())});
  }
  return out;
}

ValueOptions options_of(int64_t rollouts, int64_t tokens) {
  ValueOptions o;
  o.rollouts = rollouts;
  o.generate.max_new_tokens = tokens;
  o.generate.sampling.temperature = 1.0f;
  o.generate.sampling.seed = 7;
  return o;
}

}  // namespace

TEST(Value, RolloutsAndFeaturesEqualOneAtATime) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const std::vector<std::vector<int64_t>> prompts = {{1, 17, 230}, {1, 5, 99, 402, 8}};
  ValueOptions o = options_of(3, 6);
  // Every fifth id stops a rollout: some end early, rows of different lengths in one batch.
  for (int64_t id = 0; id < model->config().vocab_size; id += 5) o.generate.stop_ids.push_back(id);
  const ValueRollouts batched = sample_value_rollouts(*model, nullptr, prompts, even_and_length, o);
  ASSERT_EQ(batched.ids.size(), 6u);
  double worst = 0;
  size_t i = 0, shorter = 0;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int64_t s = 0; s < o.rollouts; ++s, ++i) {
      runtime::GenerateOptions g = o.generate;
      g.sampling.seed = o.generate.sampling.seed + p * 1000 + static_cast<uint64_t>(s);
      const auto ids = runtime::generate(*model, nullptr, prompts[p], g, 1)[0].ids;
      EXPECT_EQ(batched.prompt_of[i], static_cast<int64_t>(p));
      ASSERT_EQ(batched.ids[i], ids) << "rollout " << i;
      shorter += ids.size() < 6;
      // Each prefix alone: the final hidden state at its last token.
      for (size_t j = 1; j <= ids.size(); ++j) {
        std::vector<int64_t> prefix = prompts[p];
        prefix.insert(prefix.end(), ids.begin(), ids.begin() + static_cast<int64_t>(j));
        runtime::ForwardOptions fo;
        fo.logits = runtime::ForwardOptions::Logits::kNone;
        fo.return_hidden = true;
        const at::Tensor h =
            model->forward_uncached(runtime::Batch{.ids = at::tensor(prefix, at::kLong).unsqueeze(0)}, fo).hidden;
        worst =
            std::max(worst, (h[0][-1] - batched.features[i][static_cast<int64_t>(j) - 1]).abs().max().item<double>());
      }
      const auto r = even_and_length(0, {ids})[0];
      EXPECT_EQ(batched.rewards[static_cast<int64_t>(i)][0].item<double>(), r[0]);
      EXPECT_EQ(batched.rewards[static_cast<int64_t>(i)][1].item<double>(), r[1]);
      // Monte Carlo targets: the whole rollout's rewards at every prefix.
      const at::Tensor t = value_targets(batched, 1.0)[i];
      EXPECT_EQ(t.size(0), static_cast<int64_t>(ids.size()));
      EXPECT_TRUE(at::equal(t, batched.rewards[static_cast<int64_t>(i)].unsqueeze(0).expand_as(t)));
    }
  EXPECT_GT(shorter, 0u);
  std::printf("6 rollouts (%zu ended early): batched prefix features vs each prefix alone: max |diff| %.3g\n", shorter,
              worst);
  EXPECT_LT(worst, test::kF32Tol);
}

TEST(Value, TdLambdaTargetsEqualTheLambdaReturnSum) {
  // One rollout of L = 4 prefixes, reward r, the current values V(s_1..s_4) (V(s_4) is replaced by r).
  ValueRollouts r;
  r.prompt_of = {0};
  r.ids = {{5, 6, 7, 8}};
  r.features = {at::zeros({4, 3})};
  r.rewards = at::tensor({2.0}, at::kDouble).unsqueeze(0);
  const std::vector<double> v = {0.1, 0.7, -0.4, 9.0};
  const std::vector<at::Tensor> values = {at::tensor(v, at::kDouble).unsqueeze(1)};
  double worst = 0;
  for (double lambda : {0.0, 0.3, 0.9, 1.0}) {
    const at::Tensor g = value_targets(r, lambda, values)[0];
    const int64_t L = 4;
    for (int64_t j = 1; j <= L; ++j) {
      // G_j = (1 − λ) Σ_{n=1}^{L−j−1} λ^{n−1} V(s_{j+n}) + λ^{L−j−1} r, and G_L = r.
      double expected = 2.0;
      if (j < L) {
        expected = std::pow(lambda, static_cast<double>(L - j - 1)) * 2.0;
        for (int64_t n = 1; n <= L - j - 1; ++n)
          expected += (1 - lambda) * std::pow(lambda, static_cast<double>(n - 1)) * v[static_cast<size_t>(j + n - 1)];
      }
      worst = std::max(worst, std::abs(g[j - 1][0].item<double>() - expected));
      EXPECT_NEAR(g[j - 1][0].item<double>(), expected, 1e-12) << "lambda " << lambda << " prefix " << j;
    }
  }
  // By hand, λ = 0.5: G_4 = 2, G_3 = 2 (s_4's value is r), G_2 = 0.5 · (−0.4) + 0.5 · 2 = 0.8, G_1 = 0.5 · 0.7 + 0.4.
  const at::Tensor half = value_targets(r, 0.5, values)[0];
  EXPECT_NEAR(half[1][0].item<double>(), 0.8, 1e-12);
  EXPECT_NEAR(half[0][0].item<double>(), 0.75, 1e-12);
  std::printf("TD(lambda) targets vs the explicit lambda-return sum: max |diff| %.3g\n", worst);
  EXPECT_NO_THROW(value_targets(r, 0.5, {}));  // no values yet: Monte Carlo
  EXPECT_EQ(error_code_of([&] { value_targets(r, 0.5, {values[0], values[0]}); }), ErrorCode::kInvalidArgument);
}

TEST(Value, FitRecoversAPlantedLinearValue) {
  // 40 prompts, one rollout each of 1..3 prefixes whose features predict the reward exactly: V = w · h + b.
  at::manual_seed(4);
  const int64_t D = 6;
  const at::Tensor w = at::randn({D}, at::kDouble);
  ValueRollouts r;
  std::vector<double> rewards;
  for (int64_t p = 0; p < 40; ++p) {
    const int64_t L = 1 + p % 3;
    at::Tensor f = at::randn({L, D});
    // Every prefix of a rollout shares the last prefix's projection on w (Monte Carlo targets are the final reward).
    const at::Tensor last = f[L - 1].to(at::kDouble);
    for (int64_t j = 0; j < L - 1; ++j) {
      const at::Tensor fj = f[j].to(at::kDouble);
      f[j] = (fj + (last - fj).dot(w) / w.dot(w) * w).to(at::kFloat);
    }
    r.prompt_of.push_back(p);
    r.ids.push_back(std::vector<int64_t>(static_cast<size_t>(L), 3));
    r.features.push_back(f);
    rewards.push_back(f[L - 1].to(at::kDouble).dot(w).item<double>() + 0.5);
  }
  r.rewards = at::tensor(rewards, at::kDouble).unsqueeze(1);
  ValueOptions o;
  const ValueFit fit = fit_value(r, 40, o);
  const double err = (fit.head[0].to(at::kDouble) - w).abs().max().item<double>();
  std::printf("planted value: head max |diff| %.3g, bias %.4f (0.5), l2 %.3g, held-out R2 %.6f, first token %.6f\n",
              err, fit.bias[0].item<double>(), fit.l2, fit.valid_r2, fit.valid_r2_first);
  EXPECT_EQ(fit.valid_prompts, 8);
  EXPECT_EQ(fit.train_prompts, 32);
  EXPECT_LT(err, 0.05);
  EXPECT_NEAR(fit.bias[0].item<double>(), 0.5, 0.05);
  EXPECT_GT(fit.valid_r2, 0.99);
  // TD(λ) on an exact value changes nothing: its targets are the same rewards.
  o.td_lambda = 0.5;
  const ValueFit td = fit_value(r, 40, o);
  EXPECT_LT((td.head - fit.head).abs().max().item<double>(), 1e-3);
}

TEST(Value, BadInputsAreClearErrors) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const std::vector<std::vector<int64_t>> prompts = {{1, 17, 230}, {1, 5}};
  for (auto bad : std::vector<std::function<void(ValueOptions&)>>{
           [](auto& o) { o.rollouts = 0; }, [](auto& o) { o.td_lambda = 1.5; }, [](auto& o) { o.td_lambda = NAN; },
           [](auto& o) { o.td_rounds = -1; }, [](auto& o) { o.valid_share = 1; },
           [](auto& o) { o.valid_share = 0; },  // and l2 < 0: nothing to choose it on
           [](auto& o) { o.l2 = INFINITY; }, [](auto& o) { o.generate.max_new_tokens = 0; }}) {
    ValueOptions o = options_of(2, 3);
    bad(o);
    EXPECT_FALSE(o.validate().empty());
    EXPECT_EQ(error_code_of([&] { sample_value_rollouts(*model, nullptr, prompts, even_and_length, o); }),
              ErrorCode::kInvalidArgument);
  }
  const ValueOptions o = options_of(2, 3);
  EXPECT_EQ(error_code_of([&] { sample_value_rollouts(*model, nullptr, {}, even_and_length, o); }),
            ErrorCode::kInvalidArgument);
  const RolloutReward too_few = [](int64_t, const std::vector<std::vector<int64_t>>&) {
    return std::vector<std::vector<double>>{{1.0}};
  };
  EXPECT_EQ(error_code_of([&] { sample_value_rollouts(*model, nullptr, prompts, too_few, o); }),
            ErrorCode::kInvalidArgument);
  const RolloutReward nan_reward = [](int64_t, const std::vector<std::vector<int64_t>>& r) {
    return std::vector<std::vector<double>>(r.size(), {NAN});
  };
  EXPECT_EQ(error_code_of([&] { sample_value_rollouts(*model, nullptr, prompts, nan_reward, o); }),
            ErrorCode::kInvalidArgument);
  const RolloutReward ragged = [](int64_t, const std::vector<std::vector<int64_t>>& r) {
    std::vector<std::vector<double>> out(r.size(), {1.0});
    out.back().push_back(2.0);
    return out;
  };
  EXPECT_EQ(error_code_of([&] { sample_value_rollouts(*model, nullptr, prompts, ragged, o); }),
            ErrorCode::kInvalidArgument);
  // One prompt cannot be split into training and held-out prompts.
  const auto one = sample_value_rollouts(*model, nullptr, {prompts[0]}, even_and_length, o);
  EXPECT_EQ(error_code_of([&] { fit_value(one, 1, o); }), ErrorCode::kInvalidArgument);
  ValueOptions fixed = o;
  fixed.valid_share = 0;
  fixed.l2 = 0.1;
  EXPECT_NO_THROW(fit_value(one, 1, fixed));
}
