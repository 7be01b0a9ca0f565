// The bench's method registry: an explicit table (no static self-registration). A new method is one file in
// methods/ plus one line here.
#include <algorithm>

#include "methods/methods.h"
#include "palign/base/error.h"

namespace palign::bench {

const std::vector<MethodInfo>& method_registry() {
  static const std::vector<MethodInfo> registry = {
      {.name = "random", .description = "coin-flip predictor (the floor)", .make = make_random_method},
      {.name = "sample",
       .description = "unpersonalized sampling from the policy (the base)",
       .make = make_sample_method},
      {.name = "bt",
       .description = "one-size-fits-all Bradley-Terry reward on backbone features, fitted on every seen user's pairs; "
                      "generates best-of-N",
       .make = make_population_bt_method},
      {.name = "retrieval",
       .description = "LaMP-style retrieval: the user's own liked responses as context (generation) and "
                      "nearest-neighbour similarity to them (prediction)",
       .make = make_retrieval_method},
      {.name = "prm",
       .description =
           "personalized reward (Li et al. 2024): a shared linear reward modulated by a learned user embedding, a "
           "generic embedding for new users; best-of-N",
       .make = make_prm_method},
      {.name = "pal",
       .description =
           "PAL (Chen et al. 2024): prototype rewards mixed by per-user simplex weights, refitted from a new user's "
           "pairs; best-of-N",
       .make = make_pal_method,
       .curve = true},
      {.name = "pal_signed",
       .description =
           "PAL with signed mixture weights (any linear combination of the prototypes, so users outside their "
           "hull, such as contrarians, can be represented); best-of-N",
       .make = make_pal_signed_method},
      {.name = "vpl",
       .description =
           "VPL (Poddar et al. 2024): a user's pairs encoded to a Gaussian latent that conditions the reward; "
           "best-of-N",
       .make = make_vpl_method,
       .curve = true},
      {.name = "maxmin",
       .description =
           "MaxMin-RLHF (Chakraborty et al. 2024): K Bradley-Terry rewards fitted by EM over users (K in 1..4 chosen "
           "on held-out pairs), each user in the group that explains their labels best (a new user's from their "
           "pairs); best-of-N by the user's group",
       .make = make_maxmin_method,
       .in_default = false},
      {.name = "maxmin_egal",
       .description =
           "maxmin's groups, every user served the candidate that maximises the minimum reward over the groups "
           "(MaxMin's egalitarian target, unpersonalized); best-of-N",
       .make = make_maxmin_egalitarian_method,
       .in_default = false},
      {.name = "multi_linear",
       .description =
           "per-user MAP weights over K named-dimension reward heads (fitted on the per-dimension pairs) with a "
           "population prior; best-of-N",
       .make = make_multi_linear_method,
       .curve = true},
      {.name = "online",
       .description =
           "the users module's online model: a Gaussian posterior over the user's weights on multi_linear's heads, "
           "from a population prior, one assumed-density step per pair (random queries: the user's own pairs); "
           "best-of-N by the posterior mean",
       .make = make_online_method,
       .curve = true},
      {.name = "active",
       .description = "online, but the user's events are questions it chooses (the pair of candidates, among every "
                      "training prompt's, of the largest expected information gain), answered by the simulated user; "
                      "as many as the budget",
       .make = make_active_method,
       .curve = true},
      {.name = "multi_linear_xfit",
       .description =
           "multi_linear with the user weights fitted on cross-fitted head scores: a training prompt's responses "
           "scored by heads fitted without that prompt's pairs (4 folds by prompt)",
       .make = make_multi_linear_xfit_method,
       .in_default = false},
      {.name = "arm_linear",
       .description =
           "GenARM (Xu et al. 2024): one LoRA autoregressive reward per named dimension (trained on the per-dimension "
           "pairs), per-user MAP weights over their K rewards; best-of-N. Opt-in (trains 10 adapters)",
       .make = make_arm_linear_method,
       .in_default = false},
      {.name = "steer",
       .description =
           "decoding: mean-difference steering vectors per dimension, the user's unit weights x 4 added to the middle "
           "layer's residual stream (every user of a prompt in one batch)",
       .make = make_steer_method,
       .group = "decoding"},
      {.name = "steer_bipo",
       .description =
           "decoding: steer with BiPO-trained vectors (Cao et al. 2024), one per dimension from its pairs (trains 10 "
           "vectors)",
       .make = make_steer_bipo_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "prompt",
       .description =
           "decoding: a preference statement from the user's strongest weights and their liked responses most similar "
           "to the prompt (word overlap) before the prompt",
       .make = make_prompt_method,
       .group = "decoding"},
      {.name = "contrast",
       .description =
           "decoding: contrastive context steering with the user's preference statement, with + 1 x (with - without)",
       .make = make_contrast_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "greedy",
       .description = "unpersonalized greedy decoding from the policy (the base of args_greedy)",
       .make = make_greedy_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "args",
       .description =
           "decoding: ARGS (Khanov et al. 2024), top-10 tokens rescored by log p + 1.5 x the user's reward, sampled at "
           "the run's temperature; the reward (per-dimension heads on the last token's final state, the user's "
           "weights over them) also predicts, so it is validated",
       .make = make_args_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "args_greedy",
       .description = "decoding: ARGS-greedy, the best-scored of the top-10 tokens (compare with greedy)",
       .make = make_args_greedy_method,
       .in_default = false,
       .group = "decoding",
       .own_base = "greedy"},
      {.name = "cd_block",
       .description =
           "decoding: block-wise controlled decoding, 4 candidates of 8 tokens per block, the best by the user's "
           "reward",
       .make = make_cd_block_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "cards",
       .description =
           "decoding: CARDS (Li et al. 2024), segments cut where the policy's next-token entropy exceeds 5.5 nats (at "
           "most 16 tokens), 4 candidates per round, the first whose user reward does not fall kept, else 4 more, "
           "then the best of the 8",
       .make = make_cards_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "value",
       .description =
           "decoding: CD-FUDGE value-guided decoding, top-10 tokens rescored by log p + 1.5 x the user's prefix value "
           "(a linear map from a prefix's state to its rollouts' final state, fitted on 24 training prompts x 4 "
           "rollouts, folded with args's reward)",
       .make = make_value_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "correct",
       .description =
           "decoding: MetaAligner, the sampled draft rewritten by a corrector adapter told the user's two strongest "
           "dimensions in words (SFT on 64 pairs per dimension, the rejected answer in, the chosen out; trains the "
           "corrector)",
       .make = make_correct_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "ric",
       .description =
           "policy: Rewards-in-Context, one SFT adapter on 64 pairs per dimension whose responses follow their "
           "per-dimension head scores; each user asks for the scores their weights map to (trains the adapter)",
       .make = make_ric_method,
       .in_default = false,
       .group = "policy"},
      {.name = "fusion",
       .description =
           "decoding: GenARM / MOD logit fusion, log p_base + sum_k w_k log p_arm,k over per-dimension ARM LoRA "
           "adapters in one batched pass (trains 10 adapters)",
       .make = make_fusion_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "proxy",
       .description =
           "decoding: proxy-tuning toward the user's strongest dimension, base + (arm_k - base) (trains 10 adapters)",
       .make = make_proxy_method,
       .in_default = false,
       .group = "decoding"},
      {.name = "soups",
       .description =
           "policy: one DPO LoRA expert per dimension (per-dimension pairs), merged per user as theta_0 + sum_k w_k "
           "delta_k (Personalized Soups) and sampled (trains 10 adapters)",
       .make = make_soups_method,
       .in_default = false,
       .group = "policy"},
      {.name = "modpo",
       .description =
           "policy: one MODPO LoRA expert per dimension (soups' pairs; half the weight on it, the other dimensions' "
           "head scores as the margin), merged per user as soups does (trains 10 adapters)",
       .make = make_modpo_method,
       .in_default = false,
       .group = "policy"},
      {.name = "mod",
       .description =
           "policy: the same DPO experts fused per user at decoding time, log p_0 + sum_k w_k (log p_k - log p_0) "
           "(MOD), "
           "the base and K experts as K + 1 rows of one pass (trains 10 adapters)",
       .make = make_mod_method,
       .in_default = false,
       .group = "policy"},
      {.name = "pdpo",
       .description =
           "policy: P-DPO (Li et al. 2024), one LoRA adapter plus 4 learned tokens per seen user (a generic user for "
           "the "
           "unseen) before the prompt, trained with DPO on every seen user's pairs",
       .make = make_pdpo_method,
       .in_default = false,
       .group = "policy"},
      {.name = "dpo_user",
       .description =
           "policy: one DPO LoRA adapter per user on the user's own pairs (an unseen user's trained when first served)",
       .make = make_dpo_user_method,
       .in_default = false,
       .group = "policy"},
      {.name = "ipo_user",
       .description = "policy: one IPO LoRA adapter per user on the user's own pairs",
       .make = make_ipo_user_method,
       .in_default = false,
       .group = "policy"},
      {.name = "simpo_user",
       .description = "policy: one SimPO LoRA adapter per user on the user's own pairs (beta 2, gamma 0.5)",
       .make = make_simpo_user_method,
       .in_default = false,
       .group = "policy"},
      {.name = "sft_user",
       .description =
           "policy: one LoRA adapter per user fine-tuned on the user's liked (chosen) responses (OPPU-style)",
       .make = make_sft_user_method,
       .in_default = false,
       .group = "policy"},
      {.name = "oracle",
       .description = "ORACLE: reads the hidden utility R_u; predicts with the true label probability and generates "
                      "best-of-N by R_u (the upper bound)",
       .oracle = true,
       .make = make_oracle_method},
      {.name = "oracle_features",
       .description =
           "DIAGNOSTIC (reads the graders): multi_linear's per-user estimator on the TRUE grader z-scores instead of "
           "learned heads; separates a weak user model from weak features",
       .oracle = true,
       .make = make_oracle_features_method,
       .curve = true},
      {.name = "online_true",
       .description = "DIAGNOSTIC (reads the graders): online on the TRUE grader z-scores instead of learned heads",
       .oracle = true,
       .make = make_online_true_method,
       .curve = true},
      {.name = "active_true",
       .description = "DIAGNOSTIC (reads the graders): active on the TRUE grader z-scores: what elicitation gains when "
                      "the scores carry the graders",
       .oracle = true,
       .make = make_active_true_method,
       .curve = true},
      {.name = "oracle_mean",
       .description = "ORACLE: the population's mean hidden utility (knows the graders, not the user): the most a "
                      "one-size-fits-all reward can reach",
       .oracle = true,
       .make = make_population_oracle_method},
  };
  return registry;
}

const MethodInfo& find_method(const std::string& name) {
  const auto& registry = method_registry();
  auto it = std::find_if(registry.begin(), registry.end(), [&](const MethodInfo& m) { return m.name == name; });
  if (it == registry.end()) {
    std::string known;
    for (const auto& m : registry) known += (known.empty() ? "" : ", ") + m.name;
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[bench.methods] unknown method '", name, "'; known methods: ", known);
  }
  return *it;
}

std::vector<std::string> expand_method_names(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& name : names) {
    bool group = false;
    for (const auto& m : method_registry())
      if (!m.group.empty() && m.group == name) out.push_back(m.name), group = true;
    if (!group) out.push_back(find_method(name).name);
  }
  return out;
}

Response best_of_pool(const std::vector<Response>& pool, const std::function<double(const Response&)>& score,
                      int64_t extra_passes) {
  PALIGN_CHECK(!pool.empty(), ErrorCode::kInternal, "[bench.best_of_pool] empty pool");
  Response out;
  double best = 0.0;
  for (size_t i = 0; i < pool.size(); ++i) {
    const double s = score(pool[i]);
    if (i == 0 || s > best) best = s, out.text = pool[i].text;
    out.tokens += pool[i].tokens;
    out.seconds += pool[i].seconds;
    out.forward_passes = std::max(out.forward_passes, pool[i].forward_passes);
  }
  out.forward_passes += extra_passes;
  return out;
}

}  // namespace palign::bench
