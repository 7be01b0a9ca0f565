// Trained policies as bench methods: one DPO LoRA expert per named dimension (trained once on the per-dimension
// pairs, shared by both methods), combined per user with the shared DimensionWeights user model's unit weights w̃_u:
//   soups  parameter merging (Personalized Soups, Jang et al. 2023; Rewarded Soups): θ_u = θ_0 + Σ_k w̃_uk Δθ_k, the
//          user's soup as one adapter of the summed rank (runtime::lora_soup) attached to the base.
//   mod    output fusion (MOD, Shi et al. 2024) of the same experts: log π_0 + Σ_k w̃_uk (log π_k − log π_0), the base
//          and the K experts as K + 1 rows of one batched pass per token.
//   modpo  the soups of MODPO experts (Zhou et al. 2024) instead: expert k trained on the same pairs of dimension k
//          with MODPO's loss for the weighting "half on k, the other half spread evenly over the
//          rest", the other dimensions entering as the margin Σ_{j≠k} w_j (r_j(chosen) − r_j(rejected)) of the shared
//          user model's per-dimension head scores; merged per user as soups does. Beside soups it shows what the
//          margin buys.
//   pdpo   P-DPO (Li et al. 2024): one adapter plus learned user tokens, trained on every seen user's pairs at the
//          budget; a seen user's tokens before the prompt, an unseen user's the generic user's. Every user of a prompt
//          in one batched pass (one adapter, per-row tokens).
//   dpo_user, ipo_user, simpo_user, sft_user  one LoRA adapter per user on the user's own pairs: DPO, IPO or SimPO on
//          them, or SFT on their chosen responses (OPPU-style); an unseen user's trained on the pairs it brings when
//          first served.
// All opt-in (--methods policy): training takes minutes.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <map>
#include <memory>

#include "methods.h"
#include "palign/base/error.h"
#include "palign/bench/rng.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/training/policy_trainer.h"

namespace palign::bench {

namespace {

using Experts = std::vector<runtime::LoraAdapter>;

// One DPO adapter per dimension, trained once per run (the dimension pairs never change).
std::shared_ptr<Experts> dimension_experts(const FitData& data, MethodContext& ctx) {
  return ctx.shared<Experts>("policy.dpo_experts", [&] {
    c10::InferenceMode training_mode(false);
    training::PolicyTrainOptions o;
    o.loss = training::PolicyLoss::kDpo;
    o.fit.beta = 0.1;
    o.fit.seed = ctx.seed();
    auto experts = std::make_shared<Experts>();
    for (const auto& all_pairs : data.dimension_pairs) {
      std::vector<training::SequencePair> token_pairs;
      for (const auto& p : trained_pairs(all_pairs))
        if (p.chosen != p.rejected)
          token_pairs.push_back(
              training::tokenize_pair(ctx.tokenizer(), p.prompt, p.chosen, p.rejected, o.fit.max_tokens));
      auto adapter = runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed);
      if (!token_pairs.empty()) training::fit_policy_adapter(ctx.model(), adapter, token_pairs, o);
      experts->push_back(std::move(adapter));
    }
    return experts;
  });
}

// One MODPO adapter per dimension, trained once per run: expert k on the pairs dimension_experts trains expert k on
// (trained_pairs), weighing its own objective kModpoOwn and each other (1 − kModpoOwn) / (K − 1), the others' scores
// read off the shared user model's per-dimension heads.
constexpr double kModpoOwn = 0.5;
std::shared_ptr<Experts> modpo_experts(const FitData& data, Method& heads, MethodContext& ctx) {
  return ctx.shared<Experts>("policy.modpo_experts", [&] {
    c10::InferenceMode training_mode(false);
    training::PolicyTrainOptions o;
    o.loss = training::PolicyLoss::kModpo;
    o.fit.beta = 0.1;
    o.fit.seed = ctx.seed();
    const auto K = static_cast<int64_t>(data.dimension_pairs.size());
    const double other = K > 1 ? (1.0 - kModpoOwn) / static_cast<double>(K - 1) : 0.0;
    auto experts = std::make_shared<Experts>();
    for (int64_t k = 0; k < K; ++k) {
      std::vector<training::SequencePair> token_pairs;
      std::vector<double> margin;
      for (const PairText& p : trained_pairs(data.dimension_pairs[k])) {
        if (p.chosen == p.rejected) continue;
        const std::vector<double> c = heads.dimension_scores(p.prompt, p.chosen, ctx);
        const std::vector<double> r = heads.dimension_scores(p.prompt, p.rejected, ctx);
        PALIGN_CHECK(std::ssize(c) == K && std::ssize(r) == K, ErrorCode::kInternal,
                     "[bench.modpo] the user model gave ", c.size(), " head scores for ", K, " dimensions");
        double m = 0;
        for (int64_t j = 0; j < K; ++j)
          if (j != k) m += other * (c[j] - r[j]);
        margin.push_back(m);
        token_pairs.push_back(
            training::tokenize_pair(ctx.tokenizer(), p.prompt, p.chosen, p.rejected, o.fit.max_tokens));
      }
      auto adapter = runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed);
      if (!token_pairs.empty()) {
        const at::Tensor weight = at::full({std::ssize(token_pairs)}, kModpoOwn, at::kDouble);
        training::fit_modpo(ctx.model(), adapter, token_pairs, weight, at::tensor(margin, at::kDouble), o);
      }
      experts->push_back(std::move(adapter));
    }
    return experts;
  });
}

class PolicyMethod : public DecodingMethod {
 public:
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    return Method::generate_batch(users, prompt, ctx);
  }

 protected:
  void fit_strategy(const FitData& data, MethodContext& ctx) override { experts_ = dimension_experts(data, ctx); }
  std::shared_ptr<Experts> experts_;
};

class SoupsMethod final : public PolicyMethod {
 public:
  // modpo: the soup of the MODPO experts instead of the DPO ones.
  explicit SoupsMethod(bool modpo) : modpo_(modpo) {}
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = unit_weights(user, ctx);
    std::vector<const runtime::LoraAdapter*> parts;
    for (const auto& e : *experts_) parts.push_back(&e);
    const runtime::LoraAdapter soup = runtime::lora_soup(parts, w);
    runtime::GenerateOptions g = sampling_options(ctx, seed_of(ctx, modpo_ ? "modpo" : "soups", user.id + prompt));
    g.linear_hook = &soup;
    const auto r = runtime::generate(ctx.model(), &ctx.tokenizer(), encode_prompt(ctx.tokenizer(), prompt), g, 1)[0];
    return response_of(r, static_cast<int64_t>(r.ids.size()));
  }

 private:
  void fit_strategy(const FitData& data, MethodContext& ctx) override {
    // modpo's margins: the shared user model's (multi_linear's) per-dimension head scores.
    experts_ = modpo_ ? modpo_experts(data, dynamic_cast<Method&>(*profile_), ctx) : dimension_experts(data, ctx);
  }
  bool modpo_;
};

class ModMethod final : public PolicyMethod {
 public:
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = unit_weights(user, ctx);
    std::vector<const runtime::LoraAdapter*> rows = {nullptr};  // the base
    std::vector<double> weights = {1.0};
    for (size_t k = 0; k < experts_->size(); ++k) {
      rows.push_back(&(*experts_)[k]);
      weights.push_back(w[k]);
      weights[0] -= w[k];
    }
    const auto prompt_ids = encode_prompt(ctx.tokenizer(), prompt);
    auto scorer = decoding::make_lora_fusion(ctx.model(), rows, weights, prompt_ids);
    const auto r = decoding::decode(*scorer, prompt_ids, sampling_options(ctx, seed_of(ctx, "mod", user.id + prompt)),
                                    ctx.model().config().max_position, &ctx.tokenizer());
    return response_of(r, static_cast<int64_t>(r.ids.size()));
  }
};

// The token pairs of a user's labelled pairs (identical chosen and rejected dropped).
std::vector<training::SequencePair> token_pairs(const std::vector<PairText>& pairs, const runtime::Tokenizer& tok,
                                                int64_t max_tokens) {
  std::vector<training::SequencePair> out;
  for (const auto& p : pairs)
    if (p.chosen != p.rejected) out.push_back(training::tokenize_pair(tok, p.prompt, p.chosen, p.rejected, max_tokens));
  return out;
}

// Generation-only methods that learn from the users' own pairs (no shared user model).
class UserTrainedMethod : public Method {
 public:
  bool predicts() const override { return false; }
  bool generates() const override { return true; }
  double predict(const UserData&, const std::string&, const std::string&, const std::string&, MethodContext&) override {
    return 0.5;
  }
};

class PdpoMethod final : public UserTrainedMethod {
 public:
  void fit(const FitData& data, MethodContext& ctx) override {
    c10::InferenceMode training_mode(false);
    training::PolicyTrainOptions o;
    o.loss = training::PolicyLoss::kPdpo;
    o.fit.beta = 0.1;
    o.fit.lr = 1e-3;
    o.fit.seed = ctx.seed();
    std::vector<std::string> ids;
    for (const auto& u : data.users) ids.push_back(u.id);
    tokens_ = runtime::UserTokens::init(ctx.model(), ids, o.user_tokens, o.fit.seed);
    adapter_ = std::make_unique<runtime::LoraAdapter>(
        runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed));
    std::vector<training::SequencePair> pairs;
    std::vector<int64_t> slots;
    for (size_t i = 0; i < data.users.size(); ++i)
      for (auto& p : token_pairs(data.users[i].pairs, ctx.tokenizer(), o.fit.max_tokens)) {
        pairs.push_back(std::move(p));
        slots.push_back(static_cast<int64_t>(i) + 1);
      }
    // Two passes over the pairs and their generic copies, at most kSteps batches.
    o.fit.steps = std::min<int64_t>(kSteps, (4 * static_cast<int64_t>(pairs.size()) + o.fit.batch - 1) / o.fit.batch);
    if (!pairs.empty()) training::fit_pdpo(ctx.model(), *adapter_, tokens_, pairs, slots, o);
    table_ = tokens_.table();
  }
  std::vector<Response> generate_batch(const std::vector<UserData>& users, const std::string& prompt,
                                       MethodContext& ctx) override {
    const auto ids = encode_prompt(ctx.tokenizer(), prompt);
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& u : users) {
      auto row = tokens_.prefix(tokens_.slot(u.id), ctx.model().config().vocab_size);
      row.insert(row.end(), ids.begin(), ids.end());
      prompts.push_back(std::move(row));
    }
    runtime::GenerateOptions g = sampling_options(ctx, derive_seed(ctx.seed(), "pdpo." + prompt));
    g.linear_hook = adapter_.get();
    g.virtual_tokens = &table_;
    const auto results = runtime::generate_each(ctx.model(), &ctx.tokenizer(), prompts, g);
    int64_t steps = 1;
    for (const auto& r : results) steps = std::max<int64_t>(steps, static_cast<int64_t>(r.ids.size()));
    std::vector<Response> out;
    for (const auto& r : results) out.push_back(response_of(r, steps));
    return out;
  }
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    return generate_batch({user}, prompt, ctx)[0];
  }

 private:
  static constexpr int64_t kSteps = 240;  // at most, batches of 8 of the users' pairs and their generic copies
  runtime::UserTokens tokens_;
  std::unique_ptr<runtime::LoraAdapter> adapter_;
  at::Tensor table_;
};

// One adapter per user on the user's own pairs (dpo) or liked responses (sft).
class PerUserMethod final : public UserTrainedMethod {
 public:
  explicit PerUserMethod(training::PolicyLoss loss) : loss_(loss) {}
  void fit(const FitData& data, MethodContext& ctx) override {
    adapters_.clear();
    for (const auto& u : data.users) adapter_of(u, ctx);
  }
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    runtime::GenerateOptions g =
        sampling_options(ctx, derive_seed(ctx.seed(), training::policy_loss_name(loss_) + "_user." + user.id + prompt));
    g.linear_hook = adapter_of(user, ctx);
    const auto r = runtime::generate(ctx.model(), &ctx.tokenizer(), encode_prompt(ctx.tokenizer(), prompt), g, 1)[0];
    return response_of(r, static_cast<int64_t>(r.ids.size()));
  }

 private:
  // The user's adapter, trained on first use (null without pairs: the base policy).
  const runtime::LoraAdapter* adapter_of(const UserData& user, MethodContext& ctx) {
    const auto it = adapters_.find(user.id);
    if (it != adapters_.end()) return it->second.get();
    c10::InferenceMode training_mode(false);
    training::PolicyTrainOptions o;
    o.loss = loss_;
    o.fit.beta = loss_ == training::PolicyLoss::kSimpo ? 2.0 : 0.1;
    o.fit.lr = 2e-3;
    o.fit.steps = kSteps;
    o.fit.valid_share = 0;
    o.fit.seed = derive_seed(ctx.seed(), "per_user." + user.id);
    std::vector<training::SequencePair> pairs = token_pairs(user.pairs, ctx.tokenizer(), o.fit.max_tokens);
    std::unique_ptr<runtime::LoraAdapter> adapter;
    if (!pairs.empty()) {
      adapter = std::make_unique<runtime::LoraAdapter>(
          runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed));
      training::fit_policy_adapter(ctx.model(), *adapter, pairs, o);
    }
    return (adapters_[user.id] = std::move(adapter)).get();
  }
  static constexpr int64_t kSteps = 8;  // batches of 8: one pass over 64 pairs
  training::PolicyLoss loss_;
  std::map<std::string, std::unique_ptr<runtime::LoraAdapter>> adapters_;
};

}  // namespace

std::unique_ptr<Method> make_pdpo_method() { return std::make_unique<PdpoMethod>(); }
std::unique_ptr<Method> make_dpo_user_method() { return std::make_unique<PerUserMethod>(training::PolicyLoss::kDpo); }
std::unique_ptr<Method> make_ipo_user_method() { return std::make_unique<PerUserMethod>(training::PolicyLoss::kIpo); }
std::unique_ptr<Method> make_simpo_user_method() {
  return std::make_unique<PerUserMethod>(training::PolicyLoss::kSimpo);
}
std::unique_ptr<Method> make_sft_user_method() { return std::make_unique<PerUserMethod>(training::PolicyLoss::kSft); }
std::unique_ptr<Method> make_soups_method() { return std::make_unique<SoupsMethod>(false); }
std::unique_ptr<Method> make_mod_method() { return std::make_unique<ModMethod>(); }
std::unique_ptr<Method> make_modpo_method() { return std::make_unique<SoupsMethod>(true); }

}  // namespace palign::bench
