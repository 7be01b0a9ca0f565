// The personalized reward models of the training module as bench methods: `prm`, `pal`, `vpl` on the backbone's
// pooled features, and `multi_linear`, per-user weights over the K scores of a multi-objective model (one linear
// Bradley–Terry head per named dimension, fitted on the per-dimension pairs). Each is fitted on every seen user's
// pairs with the user's identity; a seen user is served by their fitted state, an unseen user by the state inferred
// from the pairs they bring (none: the generic / population state). Predicts σ(r_u(a) − r_u(b)); generates best-of-N
// over the pooled samples by r_u.
#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <utility>

#include "methods.h"
#include "palign/bench/users.h"
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

class PersonalRewardMethod final : public Method {
 public:
  PersonalRewardMethod(std::string head, bool multi_objective) : head_(std::move(head)), multi_(multi_objective) {}
  bool predicts() const override { return true; }
  bool generates() const override { return true; }

  void fit(const FitData& data, MethodContext& ctx) override {
    model_.reset();
    states_.clear();
    user_index_.clear();
    if (multi_) fit_objectives(data, ctx);
    std::vector<const std::vector<float>*> chosen, rejected;
    std::vector<int64_t> user;
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& u : data.users)
      for (const auto& p : u.pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
    ctx.precompute_features(texts);
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
    training::PreferencePairs pairs{to_tensor(chosen, dim), to_tensor(rejected, dim), user};
    // Standardised inputs (as `palign train reward` does).
    const at::Tensor both = at::cat({pairs.chosen, pairs.rejected});
    mean_ = both.mean(0);
    scale_ = both.std(0).clamp_min(1e-6);
    pairs.chosen = (pairs.chosen - mean_) / scale_;
    pairs.rejected = (pairs.rejected - mean_) / scale_;
    model_ = training::make_personalized_reward(head_);
    training::RewardFitOptions o;
    o.seed = ctx.seed();
    model_->fit(pairs, static_cast<int64_t>(data.users.size()), o);
  }

  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    if (!model_) return 0.5;
    const at::Tensor& s = state(user, ctx);
    const at::Tensor x = to_tensor_rows({input(prompt, a, ctx), input(prompt, b, ctx)});
    const at::Tensor r = model_->score(x, s);
    return sigmoid(static_cast<double>(r[0].item<float>() - r[1].item<float>()));
  }

  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto& pool = ctx.pool(prompt);
    if (!model_) return best_of_pool(pool, [](const Response&) { return 0.0; });
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& r : pool) texts.emplace_back(prompt, r.text);
    ctx.precompute_features(texts);
    std::vector<std::vector<float>> rows;
    for (const auto& r : pool) rows.push_back(input(prompt, r.text, ctx));
    const at::Tensor scores = model_->score(to_tensor_rows(rows), state(user, ctx));
    size_t i = 0;
    return best_of_pool(
        pool, [&](const Response&) { return static_cast<double>(scores[static_cast<int64_t>(i++)].item<float>()); },
        /*extra_passes=*/1);
  }

 private:
  // Standardised head inputs of rows.
  at::Tensor to_tensor_rows(const std::vector<std::vector<float>>& rows) const {
    std::vector<const std::vector<float>*> ptrs;
    for (const auto& r : rows) ptrs.push_back(&r);
    return (to_tensor(ptrs, static_cast<int64_t>(rows[0].size())) - mean_) / scale_;
  }

  // The head's input for a response: the backbone features, or the K objective scores.
  std::vector<float> input(const std::string& prompt, const std::string& response, MethodContext& ctx) const {
    const auto& f = ctx.features(prompt, response);
    if (!multi_) return f;
    std::vector<float> scores;
    for (const auto& head : objectives_) scores.push_back(static_cast<float>(head.score(f)));
    return scores;
  }

  void fit_objectives(const FitData& data, MethodContext& ctx) {
    objectives_.clear();
    for (const auto& pairs : data.dimension_pairs) {
      std::vector<std::pair<std::string, std::string>> texts;
      for (const auto& p : pairs) texts.insert(texts.end(), {{p.prompt, p.chosen}, {p.prompt, p.rejected}});
      ctx.precompute_features(texts);
      std::vector<std::vector<float>> chosen, rejected;
      for (const auto& p : pairs) {
        chosen.push_back(ctx.features(p.prompt, p.chosen));
        rejected.push_back(ctx.features(p.prompt, p.rejected));
      }
      objectives_.push_back(fit_linear_bt(chosen, rejected, {.seed = ctx.seed()}));
    }
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
  bool multi_;
  std::vector<LinearBt> objectives_;  // multi_linear: one head per named dimension
  std::unique_ptr<training::PersonalizedReward> model_;
  std::map<std::string, int64_t> user_index_;
  std::map<std::string, at::Tensor> states_;
  at::Tensor mean_, scale_;
};

}  // namespace

std::unique_ptr<Method> make_prm_method() { return std::make_unique<PersonalRewardMethod>("prm", false); }
std::unique_ptr<Method> make_pal_method() { return std::make_unique<PersonalRewardMethod>("pal", false); }
std::unique_ptr<Method> make_vpl_method() { return std::make_unique<PersonalRewardMethod>("vpl", false); }
std::unique_ptr<Method> make_multi_linear_method() { return std::make_unique<PersonalRewardMethod>("linear", true); }

}  // namespace palign::bench
