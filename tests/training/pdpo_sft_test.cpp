// P-DPO (user tokens + LoRA) and SFT: sft's loss by hand, a planted per-user preference that only the user tokens can
// tell apart (two users who want opposite tokens after the same prompts), a planted liked token SFT must learn, P-DPO
// stopped and resumed equal to an uninterrupted fit (user tokens included), user-token files round-tripping, and bad
// inputs.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "test_util.h"
#include "palign/base/error.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"
#include "palign/training/policy_trainer.h"

using namespace palign;
using namespace palign::training;
using palign::test::error_code_of;

namespace {

constexpr int64_t kA = 301, kB = 302;

// Twelve prompts; the pair prefers `good` over `bad` as the one response token.
std::vector<SequencePair> token_pairs(int64_t good, int64_t bad, int64_t n = 12) {
  std::vector<SequencePair> pairs;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> prompt = {1, 10 + i, 50 + i};
    scoring::ResponseSequence c{prompt, 3}, r{prompt, 3};
    c.ids.push_back(good);
    r.ids.push_back(bad);
    pairs.push_back({c, r});
  }
  return pairs;
}

// Mean log π(A) − log π(B) after the prompts, with the slot's user tokens before them (slot < 0: no tokens).
double gap(const runtime::Model& model, const runtime::LinearHook* hook, const runtime::UserTokens* tokens,
           int64_t slot) {
  at::NoGradGuard no_grad;
  std::vector<scoring::ResponseSequence> rows;
  const auto pairs = token_pairs(kA, kB);
  const std::vector<int64_t> prefix = slot >= 0 ? tokens->prefix(slot, model.config().vocab_size)
                                                : std::vector<int64_t>{};
  for (const auto& p : pairs) rows.push_back(with_prefix(p.chosen, prefix));
  for (const auto& p : pairs) rows.push_back(with_prefix(p.rejected, prefix));
  const at::Tensor lp = scoring::response_log_probs(model, rows, hook, {}, slot >= 0 ? tokens->table() : at::Tensor());
  const auto n = static_cast<int64_t>(pairs.size());
  return (lp.slice(0, 0, n) - lp.slice(0, n, 2 * n)).mean().item<double>();
}

TEST(SftLoss, IsTheMeanTokenNegativeLogLikelihood) {
  const at::Tensor c = at::tensor({-1.0, -2.0}, at::kDouble), len = at::tensor({2.0, 4.0}, at::kDouble);
  const at::Tensor d = policy_difference(PolicyLoss::kSft, c, {}, {}, {}, len, len, 0.1);
  const at::Tensor loss = policy_pair_loss(PolicyLoss::kSft, d, 0.1, 0);
  const double diff = std::max(std::abs(loss[0].item<double>() - 0.5), std::abs(loss[1].item<double>() - 0.5));
  std::printf("sft on (-1 / 2, -2 / 4): max-abs-diff vs hand = %.3g\n", diff);
  EXPECT_LT(diff, 1e-15);
  // pdpo's pair loss is dpo's.
  const at::Tensor r = at::tensor({-3.0, -1.0}, at::kDouble), ref = at::tensor({-1.5, -2.0}, at::kDouble);
  EXPECT_TRUE(at::equal(policy_difference(PolicyLoss::kPdpo, c, r, ref, ref, len, len, 0.5),
                        policy_difference(PolicyLoss::kDpo, c, r, ref, ref, len, len, 0.5)));
}

// User "a" always prefers A, user "b" always B, after the same prompts: no user-blind policy can serve both. P-DPO must
// move each user's gap their way, and leave the generic user (trained on the contradicting union) between them.
TEST(Pdpo, LearnsOppositePreferencesOfTwoUsersFromTheirTokens) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  std::vector<SequencePair> pairs = token_pairs(kA, kB);
  std::vector<int64_t> slots(pairs.size(), 1);
  for (const auto& p : token_pairs(kB, kA)) {
    pairs.push_back(p);
    slots.push_back(2);
  }
  PolicyTrainOptions o;
  o.fit.beta = 0.1;
  o.fit.lr = 1e-2;
  o.fit.steps = 40;
  o.fit.batch = 6;
  o.fit.valid_share = 0;
  o.fit.seed = 5;
  o.user_tokens = 2;
  o.user_lr = 5e-2;
  auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 5);
  runtime::UserTokens tokens = runtime::UserTokens::init(*model, {"a", "b"}, o.user_tokens, 5);
  const double before_a = gap(*model, nullptr, &tokens, 1), before = gap(*model, nullptr, nullptr, -1);
  const PairFitReport rep = fit_pdpo(*model, adapter, tokens, pairs, slots, o);
  const double a = gap(*model, &adapter, &tokens, 1), b = gap(*model, &adapter, &tokens, 2),
               generic = gap(*model, &adapter, &tokens, 0);
  std::printf("pdpo: log p(A) - log p(B) without tokens %.3f, user a %.3f -> %.3f, user b -> %.3f, generic -> %.3f "
              "(%lld steps, train accuracy %.3f)\n",
              before, before_a, a, b, generic, static_cast<long long>(rep.steps), rep.train_accuracy);
  EXPECT_GT(a, before_a + 1.0);
  EXPECT_LT(b, before_a - 1.0);
  EXPECT_LT(generic, a);
  EXPECT_GT(generic, b);
  EXPECT_FALSE(tokens.individual.requires_grad());
  EXPECT_GT(tokens.individual.abs().max().item<double>(), 0.0);  // the users' own offsets moved
}

TEST(Sft, RaisesTheLikelihoodOfTheLikedResponses) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  const std::vector<SequencePair> pairs = token_pairs(kA, kB);
  PolicyTrainOptions o;
  o.loss = PolicyLoss::kSft;
  o.fit.lr = 1e-2;
  o.fit.steps = 15;
  o.fit.batch = 4;
  o.fit.valid_share = 0.25;
  o.fit.seed = 2;
  auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 2);
  auto mean_lp = [&](const runtime::LinearHook* hook) {
    at::NoGradGuard no_grad;
    std::vector<scoring::ResponseSequence> rows;
    for (const auto& p : pairs) rows.push_back(p.chosen);
    return scoring::response_log_probs(*model, rows, hook).mean().item<double>();
  };
  const double before = mean_lp(nullptr);
  const PairFitReport rep = fit_policy_adapter(*model, adapter, pairs, o);
  const double after = mean_lp(&adapter);
  std::printf("sft: log p(liked) %.3f -> %.3f, valid loss %.3f, accuracy %f (NaN: none for sft)\n", before, after,
              rep.valid_loss, rep.valid_accuracy);
  EXPECT_GT(after, before + 1.0);
  EXPECT_TRUE(std::isnan(rep.train_accuracy));
  EXPECT_NEAR(rep.valid_loss, -after, 0.5);  // the mean NLL per token of held-out liked responses (one token each)
}

TEST(Pdpo, ResumeFromACheckpointEqualsAnUninterruptedFit) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  std::vector<SequencePair> pairs = token_pairs(kA, kB, 6);
  std::vector<int64_t> slots = {1, 1, 0, 1, 1, 0};
  for (const auto& p : token_pairs(kB, kA, 6)) pairs.push_back(p), slots.push_back(2);
  PolicyTrainOptions o;
  o.fit.lr = 5e-3;
  o.fit.steps = 8;
  o.fit.batch = 4;
  o.fit.valid_share = 0.25;
  o.fit.eval_every = 2;
  o.fit.patience = 100;
  o.fit.seed = 4;
  auto run = [&](runtime::LoraAdapter& adapter, runtime::UserTokens& tokens) {
    return fit_pdpo(*model, adapter, tokens, pairs, slots, o);
  };
  auto straight = runtime::LoraAdapter::init(model->config(), o.fit.lora, 4);
  runtime::UserTokens straight_tokens = runtime::UserTokens::init(*model, {"a", "b"}, 2, 4);
  const PairFitReport a = run(straight, straight_tokens);

  const auto dir = std::filesystem::temp_directory_path() / ("palign_pdpo_ckpt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  o.fit.checkpoint_dir = dir;
  o.fit.stop_at = 3;
  auto first = runtime::LoraAdapter::init(model->config(), o.fit.lora, 4);
  runtime::UserTokens first_tokens = runtime::UserTokens::init(*model, {"a", "b"}, 2, 4);
  EXPECT_TRUE(run(first, first_tokens).stopped);
  o.fit.stop_at = 0;
  auto resumed = runtime::LoraAdapter::init(model->config(), o.fit.lora, 4);
  runtime::UserTokens resumed_tokens = runtime::UserTokens::init(*model, {"a", "b"}, 2, 4);
  const PairFitReport c = run(resumed, resumed_tokens);
  EXPECT_EQ(c.resumed_at, 3);
  EXPECT_EQ(c.steps, a.steps);
  double worst = 0;
  const auto pa = straight.parameters(), pc = resumed.parameters();
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, (pa[i] - pc[i]).abs().max().item<double>());
  const double tok_diff = std::max((straight_tokens.generic - resumed_tokens.generic).abs().max().item<double>(),
                                   (straight_tokens.individual - resumed_tokens.individual).abs().max().item<double>());
  std::printf("pdpo resumed at step 3 of 8 vs uninterrupted: adapter max-abs-diff %.3g, user tokens %.3g\n", worst,
              tok_diff);
  EXPECT_LT(worst, 1e-6);
  EXPECT_LT(tok_diff, 1e-6);
  EXPECT_GT((resumed_tokens.individual).abs().max().item<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

TEST(Pdpo, BadInputsFail) {
  const auto model = runtime::Model::load(test::hf_model("llama"));
  PolicyTrainOptions o;
  auto adapter = runtime::LoraAdapter::init(model->config(), o.fit.lora, 0);
  runtime::UserTokens tokens = runtime::UserTokens::init(*model, {"a"}, 2, 0);
  const auto pairs = token_pairs(kA, kB, 2);
  EXPECT_EQ(error_code_of([&] { fit_pdpo(*model, adapter, tokens, pairs, {1}, o); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { fit_pdpo(*model, adapter, tokens, pairs, {1, 2}, o); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_code_of([&] { fit_pdpo(*model, adapter, tokens, {}, {}, o); }), ErrorCode::kInvalidArgument);
  o.user = "a";
  EXPECT_EQ(error_code_of([&] { fit_pdpo(*model, adapter, tokens, pairs, {1, 1}, o); }), ErrorCode::kInvalidArgument);
  o.user.clear();
  o.alpha = -1;
  EXPECT_EQ(error_code_of([&] { fit_pdpo(*model, adapter, tokens, pairs, {1, 1}, o); }), ErrorCode::kInvalidArgument);
  o.alpha = 0.5;
  o.loss = PolicyLoss::kPdpo;
  EXPECT_EQ(error_code_of([&] { fit_policy_adapter(*model, adapter, pairs, o); }), ErrorCode::kInvalidArgument);
}

}  // namespace
