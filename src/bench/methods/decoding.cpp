// The decoding-time strategies (palign/decoding) as bench methods. Each personalizes with the user model of
// `multi_linear` (DimensionWeights): per-dimension linear heads on the backbone's features and the user's weights over
// them, fitted on the same data as every other method. The policy is never trained.
//   steer     mean-difference steering vectors per dimension (from the per-dimension pairs), Σ_k w̃_uk · λ · v_k added
//             to the middle layer's residual stream; every user of a prompt in one batch (per-row vectors).
//   steer_bipo  the same with BiPO-trained vectors (training/steering_trainer.h; opt-in: trains 10 vectors).
//   prompt    a preference statement written from the user's strongest weights and the user's liked responses most
//             similar to the prompt (word overlap) before it; every user of a prompt in one batch.
//   contrast  the same statement as contrastive context, l_with + λ · (l_with − l_without).
//   args      ARGS with the user's reward folded into a sequence-classification head on the last token's features.
//   cd_block  block-wise controlled decoding by the user's reward.
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
#include "palign/decoding/prompting.h"
#include "palign/decoding/rerank.h"
#include "palign/decoding/steering.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/heads.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/training/arm_trainer.h"
#include "palign/training/steering_trainer.h"

namespace palign::bench {

namespace {

constexpr double kSteerLambda = 4.0;
constexpr double kContrastLambda = 1.0;
constexpr int64_t kArgsK = 10;
constexpr double kArgsW = 1.5;
constexpr int64_t kCdK = 4, kCdBlock = 8;
constexpr double kProxyAlpha = 1.0;
constexpr size_t kMaxDocs = 2;

// What the bench's dimension names ask for, in words a statement can use.
std::string phrase(const std::string& dimension) {
  static const std::map<std::string, std::string> kWords = {
      {"humour", "jokes"},          {"length", "long answers"},       {"positivity", "cheerful words"},
      {"reading_ease", "simple words"}, {"questions", "questions"}};
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
  if (w[order.back()] < 0) text += (text.empty() ? "" : " ") + ("I do not like " + phrase(dimensions[order.back()]) + ".");
  return text;
}

class SteerMethod final : public DecodingMethod {
 public:
  explicit SteerMethod(bool bipo) : bipo_(bipo) {}
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    const auto B = static_cast<int64_t>(users.size());
    at::Tensor deltas = at::zeros({B, 1, ctx.model().config().hidden_size});
    for (int64_t b = 0; b < B; ++b) {
      const auto w = unit_weights(users[b], ctx);
      for (size_t k = 0; k < vectors_.size(); ++k) deltas[b][0] += (w[k] * kSteerLambda) * vectors_[k];
    }
    const std::vector<std::vector<int64_t>> prompts(users.size(), encode_prompt(ctx.tokenizer(), prompt));
    return ctx.sample_each(prompts, seed_of(ctx, bipo_ ? "steer_bipo" : "steer", prompt),
                           [&](int64_t layer, at::Tensor& x, const std::vector<int64_t>& rows) {
                             if (layer == layer_) x = x + deltas.index_select(0, at::tensor(rows, at::kLong));
                           });
  }

 private:
  // The dimension pairs never change between budgets: the vectors are computed once.
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    if (!vectors_.empty()) return;
    layer_ = ctx.model().config().n_layer / 2;
    const int64_t max_tokens = ctx.model().config().max_position;
    for (const auto& pairs : data.dimension_pairs) {
      if (bipo_) {
        vectors_.push_back(bipo_vector(pairs, ctx));
        continue;
      }
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
      vectors_.push_back(token_pairs.empty() ? at::zeros({ctx.model().config().hidden_size})
                                             : scoring::mean_difference_vector(ctx.model(), token_pairs, layer_));
    }
  }

  // A BiPO vector at layer_ trained on one dimension's pairs (zero without pairs).
  at::Tensor bipo_vector(const std::vector<PairText>& pairs, MethodContext& ctx) const {
    c10::InferenceMode training_mode(false);
    training::BipoOptions o;
    o.layer = layer_;
    o.seed = ctx.seed();
    std::vector<training::SequencePair> token_pairs;
    for (const auto& p : pairs)
      if (p.chosen != p.rejected)
        token_pairs.push_back(training::tokenize_pair(ctx.tokenizer(), p.prompt, p.chosen, p.rejected, 1024));
    if (token_pairs.empty()) return at::zeros({ctx.model().config().hidden_size});
    return training::train_bipo_vector(ctx.model(), token_pairs, o).detach();
  }

  bool bipo_ = false;
  int64_t layer_ = 0;
  std::vector<at::Tensor> vectors_;
};

class PromptMethod final : public DecodingMethod {
 public:
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    const int64_t room = ctx.model().config().max_position - ctx.settings().max_new_tokens;
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    std::vector<std::vector<int64_t>> contexts;
    for (const auto& user : users) {
      std::vector<std::string> liked;
      for (const auto& p : user.pairs)
        if (std::find(liked.begin(), liked.end(), p.prompt + p.chosen) == liked.end())
          liked.push_back(p.prompt + p.chosen);
      std::vector<std::string> ranked;
      for (size_t i : decoding::rank_by_overlap(prompt, liked)) ranked.push_back(liked[i]);
      std::string statement = statement_of(dimensions_, profile_->weights(user, ctx));
      if (static_cast<int64_t>(encode_prompt(ctx.tokenizer(), statement).size() + prompt_ids.size()) + 1 > room)
        statement.clear();
      contexts.push_back(decoding::personalized_prompt(ctx.tokenizer(), statement, ranked, prompt_ids, room, kMaxDocs));
    }
    return ctx.sample_each(contexts, seed_of(ctx, "prompt", prompt));
  }
};

class ContrastMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    const std::string statement = statement_of(dimensions_, profile_->weights(user, ctx));
    const auto with = decoding::personalized_prompt(ctx.tokenizer(), statement, {}, prompt_ids,
                                                    ctx.model().config().max_position);
    auto scorer = decoding::make_contrast(ctx.model(), with, prompt_ids, kContrastLambda);
    const auto r = decoding::decode(*scorer, with, sampling_options(ctx, seed_of(ctx, "contrast", user.id + prompt)),
                                    ctx.model().config().max_position, &ctx.tokenizer());
    return response_of(r, 2 * static_cast<int64_t>(r.ids.size()));  // the text with and without the context
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }
};

class ArgsMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    auto scorer = decoding::make_args(ctx.model(), reward_model(user, ctx), kArgsK, kArgsW, prompt_ids);
    const auto r = decoding::decode(*scorer, prompt_ids, sampling_options(ctx, seed_of(ctx, "args", user.id + prompt)),
                                    ctx.model().config().max_position, &ctx.tokenizer());
    return response_of(r, 2 * static_cast<int64_t>(r.ids.size()));  // the policy's and the reward's pass per token
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 private:
  void fit_strategy(const FitData&, MethodContext&) override { rewards_.clear(); }

  // The user's reward on the last token's features (the part a sequence-classification head sees) as the policy's
  // backbone with a one-label score head; cached per user and budget.
  const runtime::Model& reward_model(const UserData& user, MethodContext& ctx) {
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    auto it = rewards_.find(key);
    if (it != rewards_.end()) return *it->second;
    const int64_t D = ctx.model().config().hidden_size;
    std::vector<double> coef = profile_->feature_coefficients(user, ctx);
    if (coef.empty()) coef.assign(static_cast<size_t>(2 * D), 0.0);
    const at::Tensor head =
        at::tensor(std::vector<float>(coef.begin() + D, coef.begin() + 2 * D), at::kFloat).unsqueeze(0);
    return *rewards_.emplace(key, runtime::classifier_on_backbone(ctx.model(), head)).first->second;
  }

  std::map<std::string, std::unique_ptr<runtime::Model>> rewards_;
};

class CdBlockMethod final : public DecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    const auto& tok = ctx.tokenizer();
    decoding::RerankCost cost;
    const auto r = decoding::cd_block(
        ctx.model(), &tok, prompt_ids, sampling_options(ctx, seed_of(ctx, "cd_block", user.id + prompt)), kCdK,
        kCdBlock,
        [&](const std::vector<std::vector<int64_t>>& continuations) {
          std::vector<std::string> texts;
          for (const auto& ids : continuations)
            texts.push_back(tok.decode(std::vector<int32_t>(ids.begin(), ids.end()), /*skip_special=*/true));
          return profile_->rewards(user, prompt, texts, ctx);
        },
        &cost);
    // Each block: its tokens' batched passes plus one batched scoring pass.
    return {r.text, cost.tokens, static_cast<int64_t>(r.ids.size()) + cost.batches, 0.0};
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }
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
  runtime::GenerateResult run(decoding::NextTokenScorer& scorer, const std::vector<int64_t>& prompt_ids,
                              MethodContext& ctx, uint64_t seed) const {
    return decoding::decode(scorer, prompt_ids, sampling_options(ctx, seed), ctx.model().config().max_position,
                            &ctx.tokenizer());
  }
  std::vector<runtime::LoraAdapter> arms_;
  double beta_ = 1.0;
};

class FusionMethod final : public ArmDecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    const auto w = unit_weights(user, ctx);
    std::vector<const runtime::LoraAdapter*> experts = {nullptr};  // the base
    std::vector<double> weights = {1.0};
    for (size_t k = 0; k < arms_.size(); ++k) experts.push_back(&arms_[k]), weights.push_back(w[k] / beta_);
    auto scorer = decoding::make_lora_fusion(ctx.model(), experts, weights, prompt_ids);
    const auto r = run(*scorer, prompt_ids, ctx, seed_of(ctx, "fusion", user.id + prompt));
    return response_of(r, static_cast<int64_t>(r.ids.size()));
  }
};

class ProxyMethod final : public ArmDecodingMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    const auto w = unit_weights(user, ctx);
    size_t top = 0;
    for (size_t k = 1; k < w.size(); ++k)
      if (std::abs(w[k]) > std::abs(w[top])) top = k;
    const runtime::Model& arm = merged(top, ctx);
    const bool toward = w.empty() || w[top] >= 0;
    auto scorer = decoding::make_proxy(ctx.model(), toward ? arm : ctx.model(), toward ? ctx.model() : arm,
                                       kProxyAlpha, prompt_ids);
    const auto r = run(*scorer, prompt_ids, ctx, seed_of(ctx, "proxy", user.id + prompt));
    return response_of(r, 3 * static_cast<int64_t>(r.ids.size()));
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
std::unique_ptr<Method> make_args_method() { return std::make_unique<ArgsMethod>(); }
std::unique_ptr<Method> make_cd_block_method() { return std::make_unique<CdBlockMethod>(); }
std::unique_ptr<Method> make_fusion_method() { return std::make_unique<FusionMethod>(); }
std::unique_ptr<Method> make_proxy_method() { return std::make_unique<ProxyMethod>(); }

}  // namespace palign::bench
