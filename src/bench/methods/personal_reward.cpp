// The personalized reward models of the training module as bench methods: `prm`, `pal`, `vpl`, `maxmin` on the
// backbone's pooled features (`maxmin_egal`: maxmin's fit, every user served by the egalitarian reward), and
// `multi_linear`, per-user weights over the K scores of a multi-objective model (one linear Bradley–Terry head per
// named dimension, fitted on the per-dimension pairs). Each is fitted on every seen user's pairs with the user's
// identity; a seen user is served by their fitted state, an unseen user by the state inferred from the pairs they bring
// (none: the generic / population state). Predicts σ(r_u(a) − r_u(b)); generates best-of-N over the pooled samples by
// r_u.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "methods.h"
#include "palign/base/error.h"
#include "palign/base/hash.h"
#include "palign/bench/users.h"
#include "palign/runtime/lora.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/personalized_reward.h"
#include "palign/scoring/response_log_probs.h"
#include "palign/training/arm_trainer.h"
#include "palign/training/linear_bt.h"
#include "palign/training/reward_heads.h"

namespace palign::bench {

using training::fit_linear_bt;
using training::LinearBt;

namespace {

at::Tensor to_tensor(const std::vector<const std::vector<float>*>& rows, int64_t dim) {
  at::Tensor t = at::empty({static_cast<int64_t>(rows.size()), dim}, at::kFloat);
  float* p = t.data_ptr<float>();
  for (const auto* row : rows) p = std::copy(row->begin(), row->end(), p);
  return t;
}

// One linear head per dimension on all its pairs (the L2 strength picked on held-out prompts), and kFolds
// cross-fitted sets: fold f's heads (at the same L2) leave out the pairs of the prompts in fold f (a prompt's fold is
// a hash of its text). for_prompt gives the heads that never saw a training prompt's pairs (all of them for any
// other prompt).
struct CrossFitHeads {
  static constexpr uint64_t kFolds = 4;
  std::vector<LinearBt> all;
  std::vector<std::vector<LinearBt>> folds;  // [fold][dimension]
  std::map<std::string, uint64_t> fold_of;   // the training prompts

  // cross_fit false: the heads on all pairs serve every prompt.
  CrossFitHeads(const std::vector<std::vector<PairText>>& dimension_pairs, MethodContext& ctx, const std::string& spec,
                bool cross_fit)
      : all(fit_feature_heads(dimension_pairs, ctx, SIZE_MAX, spec)), folds(kFolds) {
    if (!cross_fit) return;
    for (const auto& pairs : dimension_pairs)
      for (const auto& p : pairs) fold_of.emplace(p.prompt, fnv1a64(p.prompt) % kFolds);
    for (uint64_t f = 0; f < kFolds; ++f)
      for (size_t k = 0; k < dimension_pairs.size(); ++k) {
        std::vector<PairText> kept;
        for (const auto& p : dimension_pairs[k])
          if (fold_of.at(p.prompt) != f) kept.push_back(p);
        folds[f].push_back(fit_feature_head(kept, ctx, all[k].l2, spec));
      }
  }
  const std::vector<LinearBt>& for_prompt(const std::string& prompt) const {
    const auto it = fold_of.find(prompt);
    return it == fold_of.end() ? all : folds[it->second];
  }
};

// What the head sees of a response: the backbone's features, the K scores of per-dimension linear heads, the K
// GenARM rewards β · Σ log π_k(response | prompt) of per-dimension LoRA adapters, or (oracle_features, a diagnostic
// that reads the truth) the graders' true K z-scores.
enum class Inputs { kFeatures, kLinearHeads, kArms, kTrueScores };

class PersonalRewardMethod final : public Method, public DimensionWeights {
 public:
  // spec: the backbone features it reads (a scoring::FeatureSpec's text; empty: the run's).
  // cross_fit (kLinearHeads): the user weights are fitted on cross-fitted head scores (CrossFitHeads).
  PersonalRewardMethod(std::string head, Inputs inputs, std::string pal_mixture = "simplex", std::string spec = "",
                       bool cross_fit = false)
      : head_(std::move(head)),
        inputs_(inputs),
        multi_(inputs != Inputs::kFeatures),
        pal_mixture_(std::move(pal_mixture)),
        spec_(std::move(spec)),
        cross_fit_(cross_fit) {}
  bool predicts() const override { return !egalitarian_; }  // the egalitarian variant predicts as its twin does
  bool generates() const override { return true; }
  // Generate for every user by the generic state instead of theirs (maxmin: the minimum over the groups).
  void set_egalitarian() { egalitarian_ = true; }

  void fit(const FitData& data, MethodContext& ctx) override {
    model_.reset();
    weights_.clear();
    dimensions_ = data.dimensions;
    states_.clear();
    user_index_.clear();
    if (inputs_ == Inputs::kLinearHeads) fit_objectives(data, ctx);
    if (inputs_ == Inputs::kArms && arms_.empty()) fit_arms(data, ctx);  // the dimension pairs never change
    if (inputs_ == Inputs::kArms) precompute_arm_scores(data, ctx);
    std::vector<const std::vector<float>*> chosen, rejected;
    std::vector<int64_t> user;
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& u : data.users)
      for (const auto& p : u.pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
    ctx.precompute_features(texts, spec_);
    std::vector<std::vector<float>> rows;  // the inputs of the head, kept alive for to_tensor
    rows.reserve(texts.size());
    for (size_t u = 0; u < data.users.size(); ++u) {
      user_index_[data.users[u].id] = static_cast<int64_t>(u);
      for (const auto& p : data.users[u].pairs) {
        rows.push_back(input(p.prompt, p.chosen, ctx));
        rows.push_back(input(p.prompt, p.rejected, ctx));
        user.push_back(static_cast<int64_t>(u));
      }
    }
    if (user.empty()) return;  // budget 0: nothing to learn from; predicts 0.5
    for (size_t i = 0; i < rows.size(); i += 2) chosen.push_back(&rows[i]), rejected.push_back(&rows[i + 1]);
    const auto dim = static_cast<int64_t>(rows[0].size());
    // Early stopping and the reported accuracy are judged on held-out prompts.
    std::vector<int64_t> group;
    const std::map<std::string, int64_t> prompt_ids = prompt_index(data);
    for (const auto& u : data.users)
      for (const auto& p : u.pairs) group.push_back(prompt_ids.at(p.prompt));
    training::PreferencePairs pairs{to_tensor(chosen, dim), to_tensor(rejected, dim), user, group};
    // Standardised inputs (as `palign train reward` does).
    const at::Tensor both = at::cat({pairs.chosen, pairs.rejected});
    mean_ = both.mean(0);
    scale_ = both.std(0).clamp_min(1e-6);
    pairs.chosen = (pairs.chosen - mean_) / scale_;
    pairs.rejected = (pairs.rejected - mean_) / scale_;
    training::RewardFitOptions o;
    o.seed = ctx.seed();
    o.pal_mixture = pal_mixture_;
    prior_weight_ = o.prior_weight;
    model_ = training::fit_personalized_reward(head_, pairs, static_cast<int64_t>(data.users.size()), o).head;
  }

  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    if (!model_) return 0.5;
    const at::Tensor& s = state(user, ctx);
    const at::Tensor x = to_tensor_rows({input(prompt, a, ctx), input(prompt, b, ctx)});
    const at::Tensor r = model_->score(x, s);
    return sigmoid(static_cast<double>(r[0].item<float>() - r[1].item<float>()));
  }

  users::DimensionWeights weights(const UserData& user, MethodContext& ctx) override {
    users::DimensionWeights out;
    out.names = dimensions_;
    if (!model_) return out;
    // Cached per user and budget, as the state is.
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    if (const auto it = weights_.find(key); it != weights_.end()) return it->second;
    return weights_[key] = users::dimension_weights_at(dimensions_, differences(user, ctx), state_weights(user, ctx),
                                                       prior_weight_);
  }

  std::vector<std::vector<double>> differences(const UserData& user, MethodContext& ctx) override {
    if (!model_ || user.pairs.empty()) return {};
    std::vector<std::vector<float>> chosen, rejected;
    for (const auto& p : user.pairs) {
      chosen.push_back(input(p.prompt, p.chosen, ctx));
      rejected.push_back(input(p.prompt, p.rejected, ctx));
    }
    const at::Tensor d = (to_tensor_rows(chosen) - to_tensor_rows(rejected)).to(at::kDouble).contiguous();
    std::vector<std::vector<double>> out;
    const double* row = d.data_ptr<double>();
    for (int64_t i = 0; i < d.size(0); ++i, row += d.size(1)) out.emplace_back(row, row + d.size(1));
    return out;
  }

  std::vector<double> rewards(const UserData& user, const std::string& prompt,
                              const std::vector<std::string>& responses, MethodContext& ctx) override {
    if (!model_ || responses.empty()) return std::vector<double>(responses.size(), 0.0);
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& r : responses) texts.emplace_back(prompt, r);
    ctx.precompute_features(texts, spec_);
    std::vector<std::vector<float>> rows;
    for (const auto& r : responses) rows.push_back(input(prompt, r, ctx));
    const at::Tensor scores = model_->score(to_tensor_rows(rows), state(user, ctx)).to(at::kDouble).contiguous();
    return std::vector<double>(scores.data_ptr<double>(), scores.data_ptr<double>() + scores.numel());
  }

  // r = Σ_k w_k (s_k − mean_k) / scale_k with s_k = Σ_j a_kj (f_j − μ_kj) / σ_kj: the coefficient of f_j is
  // Σ_k (w_k / scale_k) · a_kj / σ_kj.
  std::vector<double> feature_coefficients(const UserData& user, MethodContext& ctx) override {
    if (!model_ || inputs_ != Inputs::kLinearHeads) return {};
    const std::vector<double> w = state_weights(user, ctx);
    std::vector<double> c(static_cast<size_t>(ctx.feature_dim(spec_)), 0.0);
    for (size_t k = 0; k < objectives_.size(); ++k) {
      const LinearBt& head = objectives_[k];
      if (head.weights.empty()) continue;
      const double wk = w[k] / scale_[static_cast<int64_t>(k)].item<double>();
      for (size_t j = 0; j < c.size(); ++j) c[j] += wk * head.weights[j] / head.scale[j];
    }
    return c;
  }

  std::vector<double> dimension_scores(const std::string& prompt, const std::string& response,
                                       MethodContext& ctx) override {
    if (inputs_ != Inputs::kLinearHeads || objectives_.empty()) return {};
    const auto& f = ctx.features(prompt, response, spec_);
    std::vector<double> out;
    for (const auto& head : objectives_) out.push_back(head.score(f));
    return out;
  }

  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto& pool = ctx.pool(prompt);
    if (!model_) return best_of_pool(pool, [](const Response&) { return 0.0; });
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& r : pool) texts.emplace_back(prompt, r.text);
    ctx.precompute_features(texts, spec_);
    std::vector<std::vector<float>> rows;
    if (inputs_ == Inputs::kArms) {
      std::vector<std::string> responses;
      for (const auto& r : pool) responses.push_back(r.text);
      rows = arm_scores(prompt, responses, ctx);  // one batched pass per arm
    } else {
      for (const auto& r : pool) rows.push_back(input(prompt, r.text, ctx));
    }
    const at::Tensor scores =
        model_->score(to_tensor_rows(rows), egalitarian_ ? model_->new_user_state({}, {}) : state(user, ctx));
    size_t i = 0;
    return best_of_pool(
        pool, [&](const Response&) { return static_cast<double>(scores[static_cast<int64_t>(i++)].item<float>()); },
        /*extra_passes=*/1);
  }

 private:
  // The user's state as weights (multi_linear: over the dimensions).
  std::vector<double> state_weights(const UserData& user, MethodContext& ctx) {
    const at::Tensor w = state(user, ctx).to(at::kDouble).contiguous();
    return std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
  }

  // Standardised head inputs of rows.
  at::Tensor to_tensor_rows(const std::vector<std::vector<float>>& rows) const {
    std::vector<const std::vector<float>*> ptrs;
    for (const auto& r : rows) ptrs.push_back(&r);
    return (to_tensor(ptrs, static_cast<int64_t>(rows[0].size())) - mean_) / scale_;
  }

  // The head's input for a response: the backbone features, or the K objective scores.
  std::vector<float> input(const std::string& prompt, const std::string& response, MethodContext& ctx) {
    if (inputs_ == Inputs::kArms) return arm_scores(prompt, {response}, ctx)[0];
    if (inputs_ == Inputs::kTrueScores) {
      PALIGN_CHECK(ctx.truth() && ctx.truth()->z, ErrorCode::kInternal,
                   "[bench.oracle_features] the true scores are only given to oracle methods");
      const auto z = ctx.truth()->z(prompt, response);
      return std::vector<float>(z.begin(), z.end());
    }
    const auto& f = ctx.features(prompt, response, spec_);
    if (!multi_) return f;
    // Cross-fitted: a response to a prompt the heads trained on is scored by the heads of the fold that left that
    // prompt out, so the user weights are fitted on scores as noisy as those of new prompts.
    const std::vector<LinearBt>& heads = heads_->for_prompt(prompt);
    std::vector<float> scores;
    for (const auto& head : heads) scores.push_back(static_cast<float>(head.score(f)));
    return scores;
  }

  // Every training prompt of the fit (the users' and the dimension pairs'), numbered in sorted order.
  static std::map<std::string, int64_t> prompt_index(const FitData& data) {
    std::map<std::string, int64_t> ids;
    for (const auto& pairs : data.dimension_pairs)
      for (const auto& p : pairs) ids.emplace(p.prompt, 0);
    for (const auto& u : data.users)
      for (const auto& p : u.pairs) ids.emplace(p.prompt, 0);
    int64_t i = 0;
    for (auto& [prompt, id] : ids) id = i++;
    return ids;
  }

  // The heads depend only on the dimension pairs, so they are fitted once per run and shared (every budget,
  // multi_linear and the decoding methods' user model).
  void fit_objectives(const FitData& data, MethodContext& ctx) {
    heads_ = ctx.shared<CrossFitHeads>("dimension_heads#" + spec_ + (cross_fit_ ? "#cross_fit" : ""), [&] {
      return std::make_shared<CrossFitHeads>(data.dimension_pairs, ctx, spec_, cross_fit_);
    });
    objectives_ = heads_->all;
  }

  void fit_arms(const FitData& data, MethodContext& ctx) { arms_ = fit_dimension_arms(data, ctx, &beta_); }

  // The arm rewards of every response of the fit's pairs, computed in batches before the head sees them.
  void precompute_arm_scores(const FitData& data, MethodContext& ctx) {
    std::map<std::string, std::vector<std::string>> by_prompt;
    for (const auto& u : data.users)
      for (const auto& p : u.pairs) by_prompt[p.prompt].insert(by_prompt[p.prompt].end(), {p.chosen, p.rejected});
    for (const auto& [prompt, responses] : by_prompt) (void)arm_scores(prompt, responses, ctx);
  }

  // [responses][K] arm rewards, cached by (prompt, response).
  std::vector<std::vector<float>> arm_scores(const std::string& prompt, const std::vector<std::string>& responses,
                                             MethodContext& ctx) {
    std::vector<std::string> todo;
    for (const auto& r : responses)
      if (!arm_cache_.count(prompt + '\x1f' + r)) todo.push_back(r);
    std::sort(todo.begin(), todo.end());
    todo.erase(std::unique(todo.begin(), todo.end()), todo.end());
    if (!todo.empty()) {
      std::vector<scoring::ResponseSequence> seqs;
      for (const auto& r : todo) seqs.push_back(scoring::tokenize_response(ctx.tokenizer(), prompt, r, 1 << 20));
      std::vector<std::vector<float>> scores(todo.size());
      for (const auto& arm : arms_) {
        const at::Tensor lp = scoring::response_log_probs(ctx.model(), seqs, &arm);
        for (size_t i = 0; i < todo.size(); ++i)
          scores[i].push_back(static_cast<float>(beta_ * lp[static_cast<int64_t>(i)].item<double>()));
      }
      for (size_t i = 0; i < todo.size(); ++i) arm_cache_[prompt + '\x1f' + todo[i]] = std::move(scores[i]);
    }
    std::vector<std::vector<float>> out;
    for (const auto& r : responses) out.push_back(arm_cache_.at(prompt + '\x1f' + r));
    return out;
  }

  // A seen user's fitted state, or the state inferred from an unseen user's pairs (cached per user and budget).
  const at::Tensor& state(const UserData& user, MethodContext& ctx) {
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    auto it = states_.find(key);
    if (it != states_.end()) return it->second;
    auto known = user_index_.find(user.id);
    at::Tensor s;
    if (user.seen && known != user_index_.end()) {
      s = model_->user_state(known->second);
    } else if (user.pairs.empty()) {
      s = model_->new_user_state(at::Tensor(), at::Tensor());
    } else {
      std::vector<std::vector<float>> chosen, rejected;
      for (const auto& p : user.pairs) {
        chosen.push_back(input(p.prompt, p.chosen, ctx));
        rejected.push_back(input(p.prompt, p.rejected, ctx));
      }
      s = model_->new_user_state(to_tensor_rows(chosen), to_tensor_rows(rejected));
    }
    return states_.emplace(key, s).first->second;
  }

  std::string head_;
  Inputs inputs_;
  bool multi_;
  std::string pal_mixture_;  // pal: "simplex" or "signed"
  std::string spec_;         // the features read ("": the run's)
  bool egalitarian_ = false;
  bool cross_fit_;
  std::vector<runtime::LoraAdapter> arms_;  // kArms: one per dimension
  double beta_ = 1.0;
  std::map<std::string, std::vector<float>> arm_cache_;
  std::vector<LinearBt> objectives_;      // multi_linear: one head per named dimension
  std::shared_ptr<CrossFitHeads> heads_;  // multi_linear: the heads and their cross-fitted folds
  std::unique_ptr<scoring::PersonalizedReward> model_;
  std::map<std::string, int64_t> user_index_;
  std::map<std::string, at::Tensor> states_;
  at::Tensor mean_, scale_;
  std::vector<std::string> dimensions_;
  std::map<std::string, users::DimensionWeights> weights_;
  double prior_weight_ = 1.0;  // linear: the MAP prior's strength (the covariance's prior precision)
};

}  // namespace

LinearBt fit_feature_head(const std::vector<PairText>& pairs, MethodContext& ctx, double l2, const std::string& spec) {
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& p : pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
  ctx.precompute_features(texts, spec);
  std::vector<std::vector<float>> chosen, rejected;
  std::map<std::string, int64_t> prompt_ids;
  std::vector<int64_t> groups;
  for (const auto& p : pairs) {
    chosen.push_back(ctx.features(p.prompt, p.chosen, spec));
    rejected.push_back(ctx.features(p.prompt, p.rejected, spec));
    groups.push_back(prompt_ids.emplace(p.prompt, static_cast<int64_t>(prompt_ids.size())).first->second);
  }
  training::LinearBtOptions o;
  o.seed = ctx.seed();
  if (l2 > 0) o.l2_grid = {l2};
  o.groups = std::move(groups);
  return fit_linear_bt(chosen, rejected, o);
}

std::vector<LinearBt> fit_feature_heads(const std::vector<std::vector<PairText>>& dimension_pairs, MethodContext& ctx,
                                        size_t limit, const std::string& spec) {
  std::vector<LinearBt> heads;
  for (const auto& pairs : dimension_pairs) {
    const std::vector<PairText> first(pairs.begin(),
                                      pairs.begin() + static_cast<std::ptrdiff_t>(std::min(limit, pairs.size())));
    heads.push_back(fit_feature_head(first, ctx, 0.0, spec));
  }
  return heads;
}

std::unique_ptr<Method> make_prm_method() { return std::make_unique<PersonalRewardMethod>("prm", Inputs::kFeatures); }
std::unique_ptr<Method> make_pal_method() { return std::make_unique<PersonalRewardMethod>("pal", Inputs::kFeatures); }
std::unique_ptr<Method> make_pal_signed_method() {
  return std::make_unique<PersonalRewardMethod>("pal", Inputs::kFeatures, "signed");
}
std::unique_ptr<Method> make_vpl_method() { return std::make_unique<PersonalRewardMethod>("vpl", Inputs::kFeatures); }
std::unique_ptr<Method> make_maxmin_method() {
  return std::make_unique<PersonalRewardMethod>("maxmin", Inputs::kFeatures);
}
std::unique_ptr<Method> make_maxmin_egalitarian_method() {
  auto m = std::make_unique<PersonalRewardMethod>("maxmin", Inputs::kFeatures);
  m->set_egalitarian();
  return m;
}
std::vector<runtime::LoraAdapter> fit_dimension_arms(const FitData& data, MethodContext& ctx, double* beta) {
  c10::InferenceMode training_mode(false);
  training::PairTrainOptions o;
  o.seed = ctx.seed();
  std::vector<runtime::LoraAdapter> arms;
  for (const auto& pairs : data.dimension_pairs) {
    std::vector<training::SequencePair> arm_pairs;
    for (const auto& p : trained_pairs(pairs))
      if (p.chosen != p.rejected)
        arm_pairs.push_back(training::tokenize_pair(ctx.tokenizer(), p.prompt, p.chosen, p.rejected, o.max_tokens));
    auto adapter = runtime::LoraAdapter::init(ctx.model().config(), o.lora, o.seed);
    training::fit_arm_adapter(ctx.model(), adapter, arm_pairs, o);
    arms.push_back(std::move(adapter));
  }
  if (beta) *beta = o.beta;
  return arms;
}

std::unique_ptr<DimensionWeights> make_dimension_weights() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kLinearHeads);
}
std::unique_ptr<Method> make_arm_linear_method() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kArms);
}
std::unique_ptr<Method> make_oracle_features_method() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kTrueScores);
}
std::unique_ptr<Method> make_last_token_linear_method() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kLinearHeads, "simplex",
                                                scoring::FeatureSpec::classifier().text());
}
std::unique_ptr<Method> make_multi_linear_xfit_method() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kLinearHeads, "simplex", "", /*cross_fit=*/true);
}
std::unique_ptr<Method> make_multi_linear_method() {
  return std::make_unique<PersonalRewardMethod>("linear", Inputs::kLinearHeads);
}

}  // namespace palign::bench
