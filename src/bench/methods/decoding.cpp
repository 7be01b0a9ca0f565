// The decoding-time strategies as bench methods: each is a caller of decoding::Strategy (the path `palign generate`
// and the server take), handing it what the bench fits in memory (StrategyInputs) and each user as a request's
// Personalization. Each personalizes with the user model of `multi_linear` (DimensionWeights): per-dimension linear
// heads on the backbone's features and the user's weights over them, fitted on the same data as every other method.
// The policy is never trained.
//   steer     mean-difference steering vectors per dimension (from the per-dimension pairs), Σ_k w̃_uk · λ · v_k added
//             to the middle layer's residual stream; every user of a prompt in one batch (per-row vectors).
//   steer_bipo  the same with BiPO-trained vectors (training/steering_trainer.h; opt-in: trains 10 vectors).
//   prompt    a preference statement written from the user's strongest weights and the user's liked responses most
//             similar to the prompt (word overlap) before it; every user of a prompt in one batch.
//   contrast  the same statement as contrastive context, l_with + λ · (l_with − l_without).
//   args      ARGS with the user's reward folded into a sequence-classification head on the last token's features.
//   cd_block  block-wise controlled decoding by the user's reward.
//   cards     CARDS: segments cut where the policy's next-token entropy rises, each accepted when the user's reward of
//             the text with it is at least the text's before, else resampled (rerank.h).
//   value     CD-FUDGE value-guided decoding: ARGS's rule over a prefix value model. The policy's rollouts from the
//             training prompts fit a linear map M from a prefix's final state to the expected final state of the whole
//             text (training/value_trainer.h, one output per feature); since the user's reward is linear in that
//             final state (args's reward, coefficients c_u), the user's value head is c_uᵀ M: one fit serves every
//             user, exactly under that linearity.
//   correct   MetaAligner: the policy's draft rewritten by a corrector adapter (SFT on the per-dimension pairs, the
//             rejected answer and the dimension's words in, the chosen one out) told the user's two strongest
//             dimensions (opt-in: trains the corrector).
//   ric       Rewards-in-Context: an adapter trained on responses after their per-dimension head scores, asked for the
//             scores the user's weights map to (opt-in: trains the adapter).
//   fusion    GenARM: log π_base + (1/β) Σ_k w̃_uk · log π_arm,k over per-dimension ARM LoRA adapters, one batched
//             pass of K + 1 rows (opt-in: trains the adapters).
//   proxy     proxy-tuning toward the user's strongest dimension: base + α · (π_arm,k − base), the sign of w_uk
//             choosing expert and anti-expert (opt-in: trains the adapters).
// w̃_u: the user's weights scaled to unit length, so that λ and α mean the same for every user.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "methods.h"
#include "palign/bench/rng.h"
#include "palign/decoding/strategy.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/steering_vectors.h"
#include "palign/scoring/tokenize.h"
#include "palign/training/arm_trainer.h"
#include "palign/training/corrector_trainer.h"
#include "palign/training/policy_trainer.h"
#include "palign/training/steering_trainer.h"
#include "palign/training/value_trainer.h"

namespace palign::bench {

namespace {

constexpr double kSteerLambda = 4.0;
constexpr double kContrastLambda = 1.0;
constexpr int64_t kArgsK = 10;
constexpr double kArgsW = 1.5;
constexpr int64_t kCdK = 4, kCdBlock = 8;
constexpr int64_t kCardsK = 4, kCardsRounds = 2, kCardsSegment = 16;
constexpr double kCardsEntropy = 5.5;  // about the default model's 90th percentile (decoding_bench)
constexpr int64_t kValueK = 10, kValueRollouts = 4, kValuePrompts = 24;
constexpr double kValueBeta = 1.5;
constexpr size_t kCorrectorPairs = 64;
constexpr double kProxyAlpha = 1.0;
constexpr size_t kMaxDocs = 2;

// What the bench's dimension names ask for, in words a statement can use.
std::string phrase(const std::string& dimension) {
  static const std::map<std::string, std::string> kWords = {{"humour", "jokes"},
                                                            {"length", "long answers"},
                                                            {"positivity", "cheerful words"},
                                                            {"reading_ease", "simple words"},
                                                            {"questions", "questions"}};
  if (dimension.rfind("topic.", 0) == 0) return dimension.substr(6);
  const auto it = kWords.find(dimension);
  return it != kWords.end() ? it->second : dimension;
}

// "I like A and B. I do not like C." from the two largest positive weights and the most negative one.
std::string statement_of(const std::vector<std::string>& dimensions, const std::vector<double>& w) {
  if (w.empty()) return "";
  std::vector<size_t> order(w.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
  std::string likes, text;
  for (size_t i = 0; i < 2 && i < order.size() && w[order[i]] > 0; ++i)
    likes += (likes.empty() ? "" : " and ") + phrase(dimensions[order[i]]);
  if (!likes.empty()) text = "I like " + likes + ".";
  if (w[order.back()] < 0)
    text += (text.empty() ? "" : " ") + ("I do not like " + phrase(dimensions[order.back()]) + ".");
  return text;
}

// The strategy's setup on the bench's policy, with options and in-memory inputs to fill in.
decoding::StrategySetup setup_of(MethodContext& ctx) {
  decoding::StrategySetup s;
  s.model = &ctx.model();
  s.tokenizer = &ctx.tokenizer();
  return s;
}

decoding::StrategyRequest request_of(MethodContext& ctx, const std::string& prompt, uint64_t seed,
                                     const decoding::Personalization* profile = nullptr) {
  decoding::StrategyRequest r;
  r.prompt = encode_prompt(ctx.tokenizer(), prompt);
  r.options = sampling_options(ctx, seed);
  r.profile = profile;
  return r;
}

// One output of a strategy, charged with the strategy's cost of the call.
Response response_of(const runtime::GenerateResult& r, const decoding::StrategyCost& cost) {
  return {r.text, cost.tokens, std::max<int64_t>(1, cost.passes), 0.0};
}

// A batch's outputs, each charged with its own tokens and the batch's steps (as MethodContext::sample_each).
std::vector<Response> batch_responses(const std::vector<runtime::GenerateResult>& results) {
  int64_t steps = 1;
  for (const auto& r : results) steps = std::max<int64_t>(steps, static_cast<int64_t>(r.ids.size()));
  std::vector<Response> out;
  for (const auto& r : results) out.push_back({r.text, static_cast<int64_t>(r.ids.size()), steps, 0.0});
  return out;
}

// The user as the strategies read them: weights by dimension name, a statement, their pairs.
decoding::Personalization personalization(const UserData& user, const std::vector<std::string>& dimensions,
                                          const std::vector<double>& weights, std::string statement = "") {
  decoding::Personalization p;
  p.user_id = user.id;
  for (size_t k = 0; k < dimensions.size() && k < weights.size(); ++k) p.weights[dimensions[k]] = weights[k];
  p.statement = std::move(statement);
  for (const auto& pair : user.pairs) {
    scoring::PreferenceRecord r;
    r.prompt = pair.prompt;
    r.chosen = pair.chosen;
    r.rejected = pair.rejected;
    r.user_id = user.id;
    p.pairs.push_back(std::move(r));
  }
  return p;
}

// Every user of a prompt as one batch of the strategy: request b seeded seed + b.
std::vector<Response> generate_users(decoding::Strategy& strategy,
                                     const std::vector<decoding::Personalization>& profiles, const std::string& prompt,
                                     uint64_t seed, MethodContext& ctx) {
  std::vector<decoding::StrategyRequest> requests;
  for (size_t b = 0; b < profiles.size(); ++b) requests.push_back(request_of(ctx, prompt, seed + b, &profiles[b]));
  return batch_responses(strategy.generate_batch(requests));
}

class SteerMethod final : public DecodingMethod {
 public:
  explicit SteerMethod(bool bipo) : bipo_(bipo) {}
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    std::vector<decoding::Personalization> profiles;
    for (const auto& user : users) profiles.push_back(personalization(user, dimensions_, unit_weights(user, ctx)));
    return generate_users(*strategy_, profiles, prompt, seed_of(ctx, bipo_ ? "steer_bipo" : "steer", prompt), ctx);
  }

 private:
  // The dimension pairs never change between budgets: the vectors are computed once.
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (!vectors_.empty()) return;
    const int64_t layer = ctx.model().config().n_layer / 2;
    const int64_t max_tokens = ctx.model().config().max_position;
    for (size_t k = 0; k < data.dimension_pairs.size(); ++k) {
      const std::vector<PairText> pairs = trained_pairs(data.dimension_pairs[k]);
      scoring::SteeringVector v;
      v.name = data.dimensions[k];
      v.layer = layer;
      if (bipo_) {
        v.vector = bipo_vector(pairs, layer, ctx);
      } else {
        std::vector<scoring::TokenPair> token_pairs;
        for (const auto& p : pairs) {
          const auto c = scoring::tokenize_response(ctx.tokenizer(), p.prompt, p.chosen, max_tokens);
          const auto r = scoring::tokenize_response(ctx.tokenizer(), p.prompt, p.rejected, max_tokens);
          if (c.response_start >= std::ssize(c.ids) || r.response_start >= std::ssize(r.ids)) continue;  // no response
          scoring::TokenPair t;
          t.prompt.assign(c.ids.begin(), c.ids.begin() + c.response_start);
          t.chosen.assign(c.ids.begin() + c.response_start, c.ids.end());
          t.rejected.assign(r.ids.begin() + r.response_start, r.ids.end());
          if (!t.chosen.empty() && !t.rejected.empty()) token_pairs.push_back(std::move(t));
        }
        v.vector = token_pairs.empty() ? at::zeros({ctx.model().config().hidden_size})
                                       : scoring::mean_difference_vector(ctx.model(), token_pairs, layer);
      }
      vectors_.push_back(std::move(v));
    }
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.lambda = kSteerLambda;
    setup.inputs.vectors = &vectors_;
    strategy_ = decoding::make_strategy("steer", setup);
  }

  // A BiPO vector at layer trained on one dimension's pairs (zero without pairs).
  static at::Tensor bipo_vector(const std::vector<PairText>& pairs, int64_t layer, MethodContext& ctx) {
    c10::InferenceMode training_mode(false);
    training::BipoOptions o;
    o.layer = layer;
    o.seed = ctx.seed();
    std::vector<training::SequencePair> token_pairs;
    for (const auto& p : pairs)
      if (p.chosen != p.rejected)
        token_pairs.push_back(training::tokenize_pair(ctx.tokenizer(), p.prompt, p.chosen, p.rejected, 1024));
    if (token_pairs.empty()) return at::zeros({ctx.model().config().hidden_size});
    return training::train_bipo_vector(ctx.model(), token_pairs, o).detach();
  }

  bool bipo_ = false;
  std::vector<scoring::SteeringVector> vectors_;
  std::unique_ptr<decoding::Strategy> strategy_;
};

class PromptMethod final : public DecodingMethod {
 public:
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    std::vector<decoding::Personalization> profiles;
    for (const auto& user : users) {
      const auto w = profile_->weights(user, ctx).mean;
      profiles.push_back(personalization(user, dimensions_, w, statement_of(dimensions_, w)));
    }
    return generate_users(*strategy_, profiles, prompt, seed_of(ctx, "prompt", prompt), ctx);
  }

 private:
  void fit_strategy(const FitData&, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.retrieve = kMaxDocs;
    strategy_ = decoding::make_strategy("prompt", setup);
  }
  std::unique_ptr<decoding::Strategy> strategy_;
};

class ContrastMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = profile_->weights(user, ctx).mean;
    const auto profile = personalization(user, dimensions_, w, statement_of(dimensions_, w));
    const auto r = strategy_->generate(request_of(ctx, prompt, seed_of(ctx, "contrast", user.id + prompt), &profile));
    return response_of(r.at(0), strategy_->cost());  // the text with and without the context per token
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData&, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.lambda = kContrastLambda;
    strategy_ = decoding::make_strategy("contrast", setup);
  }
  std::unique_ptr<decoding::Strategy> strategy_;
};

// ARGS's reward is what a sequence-classification head can compute for every candidate token: multi_linear's user
// model over per-dimension heads on the last token's final state alone (its own heads, user weights and population
// prior), so `args` predicts with it too — the accuracy table and the per-dimension table validate the very reward
// it decodes with. greedy: ARGS-greedy (the paper's), the best-scored token; else sampled at the run's temperature.
class ArgsMethod final : public DecodingMethod {
 public:
  explicit ArgsMethod(bool greedy) : greedy_(greedy), reward_(make_last_token_linear_method()) {}
  bool predicts() const override { return !greedy_; }  // args_greedy's reward is args's
  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    return reward_->predict(user, prompt, a, b, ctx);
  }
  std::vector<double> dimension_scores(const std::string& prompt, const std::string& response,
                                       MethodContext& ctx) override {
    return greedy_ ? std::vector<double>{} : reward_->dimension_scores(prompt, response, ctx);
  }
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.args_k = kArgsK;
    setup.options.args_w = kArgsW;
    setup.inputs.reward_classifier = &reward_model(user, ctx);
    auto strategy = decoding::make_strategy("args", setup);
    decoding::StrategyRequest request = request_of(ctx, prompt, seed_of(ctx, "args", user.id + prompt));
    request.options.sampling.greedy = greedy_;
    const auto r = strategy->generate(request);
    return response_of(r.at(0), strategy->cost());  // the policy's and the reward's pass per token
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    rewards_.clear();
    reward_->fit(data, ctx);
  }

  // The user's reward as the policy's backbone with a one-label score head; cached per user and budget.
  const runtime::Model& reward_model(const UserData& user, MethodContext& ctx) {
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    auto it = rewards_.find(key);
    if (it != rewards_.end()) return *it->second;
    const int64_t D = ctx.model().config().hidden_size;
    std::vector<double> coef = dynamic_cast<DimensionWeights&>(*reward_).feature_coefficients(user, ctx);
    if (coef.empty()) coef.assign(static_cast<size_t>(D), 0.0);
    const at::Tensor head = at::tensor(std::vector<float>(coef.begin(), coef.end()), at::kFloat).unsqueeze(0);
    return *rewards_.emplace(key, runtime::classifier_on_backbone(ctx.model(), head)).first->second;
  }

  bool greedy_;
  std::unique_ptr<Method> reward_;  // also a DimensionWeights
  std::map<std::string, std::unique_ptr<runtime::Model>> rewards_;
};

class CdBlockMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.cd_k = kCdK;
    setup.options.cd_block = kCdBlock;
    setup.inputs.reward = [&](const std::string& prompt_text, const std::vector<std::string>& responses) {
      return profile_->rewards(user, prompt_text, responses, ctx);
    };
    auto strategy = decoding::make_strategy("cd_block", setup);
    const auto r = strategy->generate(request_of(ctx, prompt, seed_of(ctx, "cd_block", user.id + prompt)));
    return response_of(r.at(0), strategy->cost());  // each block: its tokens' batched passes and one scoring pass
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }
};

class CardsMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.cards_k = kCardsK;
    setup.options.cards_rounds = kCardsRounds;
    setup.options.cards_segment = kCardsSegment;
    setup.options.cards_entropy = kCardsEntropy;
    setup.inputs.reward = [&](const std::string& prompt_text, const std::vector<std::string>& responses) {
      return profile_->rewards(user, prompt_text, responses, ctx);
    };
    auto strategy = decoding::make_strategy("cards", setup);
    const auto r = strategy->generate(request_of(ctx, prompt, seed_of(ctx, "cards", user.id + prompt)));
    return response_of(r.at(0), strategy->cost());  // each round's batched steps (rejected ones too), scoring passes
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }
};

class ValueMethod final : public DecodingMethod {
 public:
  ValueMethod() : reward_(make_last_token_linear_method()) {}
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.value_k = kValueK;
    setup.options.value_beta = kValueBeta;
    setup.inputs.reward_classifier = &value_model(user, ctx);
    auto strategy = decoding::make_strategy("value", setup);
    const auto r = strategy->generate(request_of(ctx, prompt, seed_of(ctx, "value", user.id + prompt)));
    return response_of(r.at(0), strategy->cost());  // the policy's and the value model's pass per token
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    values_.clear();
    reward_->fit(data, ctx);
    if (!map_.defined()) map_ = fit_map(data, ctx);  // the policy never changes: one fit for every budget
  }

  // M [D, D]: a prefix's final state to the expected final state of the whole rollout.
  static at::Tensor fit_map(const FitData& data, MethodContext& ctx) {
    std::vector<std::string> texts;
    for (const auto& pairs : data.dimension_pairs)
      for (const auto& p : pairs)
        if (std::find(texts.begin(), texts.end(), p.prompt) == texts.end() && std::ssize(texts) < kValuePrompts)
          texts.push_back(p.prompt);
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& t : texts) prompts.push_back(encode_prompt(ctx.tokenizer(), t));
    training::ValueOptions o;
    o.rollouts = kValueRollouts;
    o.generate = sampling_options(ctx, derive_seed(ctx.seed(), "value.rollouts"));
    const training::RolloutReward none = [](int64_t, const std::vector<std::vector<int64_t>>& r) {
      return std::vector<std::vector<double>>(r.size(), {0.0});
    };
    training::ValueRollouts rollouts = training::sample_value_rollouts(ctx.model(), &ctx.tokenizer(), prompts, none, o);
    // Each rollout's "rewards" are its final state: the last token's, or the one before a closing stop token (the
    // reward reads the text, which drops it).
    std::vector<at::Tensor> finals;
    for (size_t i = 0; i < rollouts.ids.size(); ++i) {
      const auto& ids = rollouts.ids[i];
      const bool stopped =
          std::find(o.generate.stop_ids.begin(), o.generate.stop_ids.end(), ids.back()) != o.generate.stop_ids.end();
      const int64_t last = static_cast<int64_t>(ids.size()) - (stopped && ids.size() > 1 ? 2 : 1);
      finals.push_back(rollouts.features[i][last].to(at::kDouble));
    }
    rollouts.rewards = at::stack(finals);
    return training::fit_value(rollouts, static_cast<int64_t>(prompts.size()), o).head.to(at::kDouble);
  }

  // The user's value head c_uᵀ M on the policy's backbone; cached per user and budget.
  const runtime::Model& value_model(const UserData& user, MethodContext& ctx) {
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    if (const auto it = values_.find(key); it != values_.end()) return *it->second;
    std::vector<double> coef = dynamic_cast<DimensionWeights&>(*reward_).feature_coefficients(user, ctx);
    if (coef.empty()) coef.assign(static_cast<size_t>(map_.size(0)), 0.0);
    const at::Tensor head = at::tensor(coef, at::kDouble).unsqueeze(0).matmul(map_).to(at::kFloat);
    return *values_.emplace(key, runtime::classifier_on_backbone(ctx.model(), head)).first->second;
  }

  std::unique_ptr<Method> reward_;  // args's reward: also a DimensionWeights
  at::Tensor map_;
  std::map<std::string, std::unique_ptr<runtime::Model>> values_;
};

// correct: MetaAligner's corrector, a LoRA adapter trained once (SFT, the dimension pairs never change) on the first
// kCorrectorPairs pairs of each dimension, the rejected answer and the dimension's words in, the chosen answer out;
// each user's draft corrected toward their two strongest positive dimensions.
class CorrectMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const decoding::Personalization profile = personalization(user, dimensions_, unit_weights(user, ctx));
    const auto r = strategy_->generate(request_of(ctx, prompt, seed_of(ctx, "correct", user.id + prompt), &profile));
    return response_of(r.at(0), strategy_->cost());  // the draft's and the correction's tokens
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (!corrector_) {
      c10::InferenceMode training_mode(false);
      std::vector<scoring::PreferenceRecord> records;
      for (size_t k = 0; k < data.dimension_pairs.size(); ++k)
        for (size_t i = 0; i < data.dimension_pairs[k].size() && i < kCorrectorPairs; ++i) {
          const PairText& p = data.dimension_pairs[k][i];
          if (p.chosen == p.rejected) continue;
          scoring::PreferenceRecord r;
          r.prompt = p.prompt;
          r.chosen = p.chosen;
          r.rejected = p.rejected;
          r.dimension = data.dimensions[k];
          records.push_back(std::move(r));
        }
      training::PolicyTrainOptions o;
      o.loss = training::PolicyLoss::kSft;
      o.fit.seed = ctx.seed();
      o.fit.max_tokens = ctx.model().config().max_position;
      std::vector<training::SequencePair> pairs;
      for (const auto& r : training::corrector_records(records, /*objectives=*/true))
        pairs.push_back(training::tokenize_pair(ctx.tokenizer(), r.prompt, r.chosen, r.rejected, o.fit.max_tokens));
      corrector_ = runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed);
      if (!pairs.empty()) training::fit_policy_adapter(ctx.model(), *corrector_, pairs, o);
    }
    decoding::StrategySetup setup = setup_of(ctx);
    setup.inputs.corrector = &*corrector_;
    setup.inputs.corrector_objectives = true;
    strategy_ = decoding::make_strategy("correct", setup);
  }

  std::optional<runtime::LoraAdapter> corrector_;
  std::unique_ptr<decoding::Strategy> strategy_;
};

// ric: Rewards-in-Context, one SFT adapter trained once on the first kCorrectorPairs pairs of each dimension, both
// responses of a pair written after their K per-dimension head scores (multi_linear's heads, the ones the users'
// weights are over); each user asks for the scores their unit weights map to (the ric strategy's "scores" mode).
class RicMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const decoding::Personalization profile = personalization(user, dimensions_, unit_weights(user, ctx));
    const auto r = strategy_->generate(request_of(ctx, prompt, seed_of(ctx, "ric", user.id + prompt), &profile));
    return response_of(r.at(0), strategy_->cost());
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (!adapter_) {
      c10::InferenceMode training_mode(false);
      auto& heads = dynamic_cast<Method&>(*profile_);  // multi_linear: its per-dimension head scores
      std::vector<scoring::PreferenceRecord> records;
      for (size_t k = 0; k < data.dimension_pairs.size(); ++k)
        for (size_t i = 0; i < data.dimension_pairs[k].size() && i < kCorrectorPairs; ++i) {
          const PairText& p = data.dimension_pairs[k][i];
          scoring::PreferenceRecord r;
          r.prompt = p.prompt;
          r.chosen = p.chosen;
          r.rejected = p.rejected;
          records.push_back(std::move(r));
        }
      const training::RicData ric =
          training::ric_records(records, data.dimensions, [&](const std::string& prompt, const std::string& response) {
            return heads.dimension_scores(prompt, response, ctx);
          });
      quantiles_ = ric.quantiles;
      training::PolicyTrainOptions o;
      o.loss = training::PolicyLoss::kSft;
      o.fit.seed = ctx.seed();
      o.fit.max_tokens = ctx.model().config().max_position;
      std::vector<training::SequencePair> pairs;
      for (const auto& r : ric.records)
        pairs.push_back(training::tokenize_pair(ctx.tokenizer(), r.prompt, r.chosen, r.chosen, o.fit.max_tokens));
      adapter_ = runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed);
      if (!pairs.empty()) training::fit_policy_adapter(ctx.model(), *adapter_, pairs, o);
    }
    decoding::StrategySetup setup = setup_of(ctx);
    setup.inputs.ric_adapter = &*adapter_;
    setup.inputs.ric_labels = data.dimensions;
    setup.inputs.ric_quantiles = quantiles_;
    strategy_ = decoding::make_strategy("ric", setup);
  }

  std::optional<runtime::LoraAdapter> adapter_;
  std::vector<std::vector<double>> quantiles_;
  std::unique_ptr<decoding::Strategy> strategy_;
};

// fusion and proxy: per-dimension ARM adapters (GenARM), trained once (the dimension pairs never change).
class ArmDecodingMethod : public DecodingMethod {
 public:
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 protected:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (arms_.empty()) arms_ = fit_dimension_arms(data, ctx, &beta_);
  }
  std::vector<runtime::LoraAdapter> arms_;
  double beta_ = 1.0;
};

// The policy's name among a strategy's in-memory models (no dimension is named so).
constexpr const char* kBase = "base";

class FusionMethod final : public ArmDecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = unit_weights(user, ctx);
    decoding::Personalization profile = personalization(user, {}, {});
    profile.weights[kBase] = 1.0;
    for (size_t k = 0; k < arms_.size(); ++k) profile.weights[dimensions_[k]] = w[k] / beta_;
    const auto r = strategy_->generate(request_of(ctx, prompt, seed_of(ctx, "fusion", user.id + prompt), &profile));
    return response_of(r.at(0), strategy_->cost());  // the base and the K adapters as rows of one pass per token
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (!arms_.empty()) return;
    ArmDecodingMethod::fit_strategy(data, ctx);
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.models = kBase;
    setup.inputs.adapters[kBase] = nullptr;
    for (size_t k = 0; k < arms_.size(); ++k) {
      setup.options.models += "," + data.dimensions[k];
      setup.inputs.adapters[data.dimensions[k]] = &arms_[k];
    }
    strategy_ = decoding::make_strategy("fusion", setup);
  }
  std::unique_ptr<decoding::Strategy> strategy_;
};

class ProxyMethod final : public ArmDecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = unit_weights(user, ctx);
    size_t top = 0;
    for (size_t k = 1; k < w.size(); ++k)
      if (std::abs(w[k]) > std::abs(w[top])) top = k;
    const bool toward = w.empty() || w[top] >= 0;
    decoding::StrategySetup setup = setup_of(ctx);
    setup.options.alpha = kProxyAlpha;
    setup.options.expert = toward ? "arm" : kBase;
    setup.options.antiexpert = toward ? kBase : "arm";
    setup.inputs.models = {{kBase, &ctx.model()}, {"arm", &merged(top, ctx)}};
    auto strategy = decoding::make_strategy("proxy", setup);
    const auto r = strategy->generate(request_of(ctx, prompt, seed_of(ctx, "proxy", user.id + prompt)));
    return response_of(r.at(0), strategy->cost());  // the base, the expert and the anti-expert per token
  }

 private:
  const runtime::Model& merged(size_t k, MethodContext& ctx) {
    if (merged_.size() != arms_.size()) merged_.resize(arms_.size());
    if (!merged_[k]) merged_[k] = runtime::merge_lora(ctx.model(), arms_[k]);
    return *merged_[k];
  }
  std::vector<std::unique_ptr<runtime::Model>> merged_;
};

}  // namespace

std::vector<int64_t> encode_prompt(const runtime::Tokenizer& tok, const std::string& text) {
  const auto ids = tok.encode(text, /*add_special=*/true);
  return {ids.begin(), ids.end()};
}

runtime::GenerateOptions sampling_options(const MethodContext& ctx, uint64_t seed) {
  runtime::GenerateOptions g;
  g.max_new_tokens = ctx.settings().max_new_tokens;
  g.sampling = {.temperature = ctx.settings().temperature, .top_p = ctx.settings().top_p, .seed = seed};
  if (ctx.tokenizer().eos_id()) g.stop_ids = {*ctx.tokenizer().eos_id()};
  return g;
}

Response response_of(const runtime::GenerateResult& r, int64_t passes) {
  const auto n = static_cast<int64_t>(r.ids.size());
  return {r.text, n, std::max<int64_t>(1, passes), 0.0};
}

std::unique_ptr<Method> make_steer_method() { return std::make_unique<SteerMethod>(false); }
std::unique_ptr<Method> make_steer_bipo_method() { return std::make_unique<SteerMethod>(true); }
std::unique_ptr<Method> make_prompt_method() { return std::make_unique<PromptMethod>(); }
std::unique_ptr<Method> make_contrast_method() { return std::make_unique<ContrastMethod>(); }
std::unique_ptr<Method> make_args_method() { return std::make_unique<ArgsMethod>(/*greedy=*/false); }
std::unique_ptr<Method> make_args_greedy_method() { return std::make_unique<ArgsMethod>(/*greedy=*/true); }
std::unique_ptr<Method> make_cd_block_method() { return std::make_unique<CdBlockMethod>(); }
std::unique_ptr<Method> make_cards_method() { return std::make_unique<CardsMethod>(); }
std::unique_ptr<Method> make_value_method() { return std::make_unique<ValueMethod>(); }
std::unique_ptr<Method> make_correct_method() { return std::make_unique<CorrectMethod>(); }
std::unique_ptr<Method> make_ric_method() { return std::make_unique<RicMethod>(); }
std::unique_ptr<Method> make_fusion_method() { return std::make_unique<FusionMethod>(); }
std::unique_ptr<Method> make_proxy_method() { return std::make_unique<ProxyMethod>(); }

}  // namespace palign::bench
