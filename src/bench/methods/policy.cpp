// Trained policies as bench methods: one DPO LoRA expert per named dimension (trained once on the per-dimension
// pairs, shared by both methods), combined per user with the shared DimensionWeights user model's unit weights w̃_u:
//   soups  parameter merging (Personalized Soups, Jang et al. 2023; Rewarded Soups): θ_u = θ_0 + Σ_k w̃_uk Δθ_k, the
//          user's soup as one adapter of the summed rank (runtime::lora_soup) attached to the base.
//   mod    output fusion (MOD, Shi et al. 2024) of the same experts: log π_0 + Σ_k w̃_uk (log π_k − log π_0), the base
//          and the K experts as K + 1 rows of one batched pass per token.
// Both opt-in (--methods policy): training the experts takes minutes.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <map>

#include "methods.h"
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
  return std::static_pointer_cast<Experts>(ctx.shared("policy.dpo_experts", [&] {
    c10::InferenceMode training_mode(false);
    training::PolicyTrainOptions o;
    o.loss = training::PolicyLoss::kDpo;
    o.fit.beta = 0.1;
    o.fit.seed = ctx.seed();
    auto experts = std::make_shared<Experts>();
    for (const auto& pairs : data.dimension_pairs) {
      std::vector<training::ArmPair> token_pairs;
      for (const auto& p : pairs)
        if (p.chosen != p.rejected)
          token_pairs.push_back({training::tokenize_response(ctx.tokenizer(), p.prompt, p.chosen, o.fit.max_tokens),
                                 training::tokenize_response(ctx.tokenizer(), p.prompt, p.rejected, o.fit.max_tokens)});
      auto adapter = runtime::LoraAdapter::init(ctx.model().config(), o.fit.lora, o.fit.seed);
      if (!token_pairs.empty()) training::fit_policy_adapter(ctx.model(), adapter, token_pairs, o);
      experts->push_back(std::move(adapter));
    }
    return std::static_pointer_cast<void>(experts);
  }));
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
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto w = unit_weights(user, ctx);
    std::vector<const runtime::LoraAdapter*> parts;
    for (const auto& e : *experts_) parts.push_back(&e);
    const runtime::LoraAdapter soup = runtime::lora_soup(parts, w);
    runtime::GenerateOptions g = sampling_options(ctx, seed_of(ctx, "soups", user.id + prompt));
    g.linear_hook = &soup;
    const auto r = runtime::generate(ctx.model(), &ctx.tokenizer(), encode_prompt(ctx.tokenizer(), prompt), g, 1)[0];
    return response_of(r, static_cast<int64_t>(r.ids.size()));
  }
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

}  // namespace

std::unique_ptr<Method> make_soups_method() { return std::make_unique<SoupsMethod>(); }
std::unique_ptr<Method> make_mod_method() { return std::make_unique<ModMethod>(); }

}  // namespace palign::bench
