// The users module's online model as bench methods: `online` learns each user from their labelled pairs one event at a
// time (random queries), `active` from questions it chooses itself on the training prompts' candidate pools, answered
// by the simulated user. Both read the same scores (multi_linear's per-dimension heads on the backbone features,
// standardised over the training candidates) and start every user from a population prior fitted on the seen users.
// Their oracle twins (online_true, active_true) read the graders' true z-scores instead: what elicitation gains when
// the scores carry the graders, as oracle_features is to multi_linear.
#include <map>

#include "methods.h"
#include "palign/base/error.h"
#include "palign/users/online_model.h"

namespace palign::bench {
namespace {

// One linear Bradley–Terry head per named dimension, each standardised over every candidate of the training prompts:
// s(y) in the user model's units. The dimension pairs never change between budgets, so it is fitted once per run.
struct HeadScorer {
  std::vector<training::LinearBt> heads;
  std::vector<double> mean, scale;

  std::vector<double> raw(const std::string& prompt, const std::string& response, MethodContext& ctx) const {
    const auto& f = ctx.features(prompt, response);
    std::vector<double> s;
    for (const auto& h : heads) s.push_back(h.score(f));
    return s;
  }
  std::vector<double> scores(const std::string& prompt, const std::string& response, MethodContext& ctx) const {
    std::vector<double> s = raw(prompt, response, ctx);
    for (size_t k = 0; k < s.size(); ++k) s[k] = (s[k] - mean[k]) / scale[k];
    return s;
  }
};

std::shared_ptr<HeadScorer> fit_scorer(const FitData& data, MethodContext& ctx) {
  auto scorer = std::make_shared<HeadScorer>();
  scorer->heads = fit_feature_heads(data.dimension_pairs, ctx);
  const size_t k = scorer->heads.size();
  std::vector<double> sum(k, 0.0), sum2(k, 0.0);
  double n = 0;
  for (const auto& e : ctx.elicitation_prompts())
    for (const auto& c : e.candidates) {
      const auto s = scorer->raw(e.prompt, c, ctx);
      for (size_t i = 0; i < k; ++i) sum[i] += s[i], sum2[i] += s[i] * s[i];
      n += 1;
    }
  PALIGN_CHECK(n >= 2, ErrorCode::kInternal, "[bench.online] no training candidates to standardise the heads on");
  for (size_t i = 0; i < k; ++i) {
    const double m = sum[i] / n;
    scorer->mean.push_back(m);
    scorer->scale.push_back(std::max(1e-6, std::sqrt(std::max(0.0, sum2[i] / n - m * m))));
  }
  return scorer;
}

class OnlineMethod final : public Method {
 public:
  OnlineMethod(bool active, bool true_scores) : active_(active), true_scores_(true_scores) {}
  bool predicts() const override { return true; }
  bool generates() const override { return true; }

  // The population prior from the seen users' pairs at this budget, by the law of total variance: each user's batch
  // Laplace fit from a unit prior, the mean of their means, and the (shrunk) covariance of their means plus the mean of
  // their posterior covariances. Without pairs (b = 0) the unit prior: nothing is known of anyone.
  void fit(const FitData& data, MethodContext& ctx) override {
    if (true_scores_)
      PALIGN_CHECK(ctx.truth() != nullptr, ErrorCode::kInternal,
                   "[bench.online] the true scores are only given to oracle methods");
    else
      scorer_ = ctx.shared<HeadScorer>("online.scorer", [&] { return fit_scorer(data, ctx); });
    posteriors_.clear();
    candidate_scores_.clear();
    const size_t k = data.dimensions.size();
    std::vector<double> identity(k * k, 0.0);
    for (size_t i = 0; i < k; ++i) identity[i * k + i] = 1.0;
    const users::DimensionWeights unit = users::gaussian_prior(data.dimensions, std::vector<double>(k, 0.0), identity);
    std::vector<std::vector<double>> means;
    std::vector<double> mean_cov(k * k, 0.0);
    for (const auto& u : data.users) {
      if (u.pairs.empty()) continue;
      const users::DimensionWeights fit = users::batch_laplace(unit, differences(u, ctx));
      means.push_back(fit.mean);
      for (size_t i = 0; i < k * k; ++i) mean_cov[i] += fit.covariance[i];
    }
    if (means.size() < 2) {
      prior_ = unit;
      return;
    }
    const users::DimensionWeights spread = users::population_prior(data.dimensions, means);
    std::vector<double> cov = spread.covariance;
    for (size_t i = 0; i < k * k; ++i) cov[i] += mean_cov[i] / static_cast<double>(means.size());
    prior_ = users::gaussian_prior(data.dimensions, spread.mean, cov);
  }

  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    return users::predictive_preference(posterior(user, ctx), scores(prompt, a, ctx), scores(prompt, b, ctx));
  }

  // Best-of-N over the pooled samples by the posterior mean's reward.
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const users::DimensionWeights& post = posterior(user, ctx);
    return best_of_pool(ctx.pool(prompt), [&](const Response& r) {
      const auto s = scores(prompt, r.text, ctx);
      double reward = 0;
      for (size_t k = 0; k < s.size(); ++k) reward += post.mean[k] * s[k];
      return reward;
    });
  }

  std::vector<double> dimension_scores(const std::string& prompt, const std::string& response,
                                       MethodContext& ctx) override {
    return scorer_ ? scorer_->raw(prompt, response, ctx) : std::vector<double>{};
  }

 private:
  std::vector<double> scores(const std::string& prompt, const std::string& response, MethodContext& ctx) const {
    return true_scores_ ? ctx.truth()->z(prompt, response) : scorer_->scores(prompt, response, ctx);
  }

  std::vector<std::vector<double>> differences(const UserData& user, MethodContext& ctx) const {
    std::vector<std::vector<double>> d;
    for (const auto& p : user.pairs) {
      auto c = scores(p.prompt, p.chosen, ctx);
      const auto r = scores(p.prompt, p.rejected, ctx);
      for (size_t k = 0; k < c.size(); ++k) c[k] -= r[k];
      d.push_back(std::move(c));
    }
    return d;
  }

  // The user's posterior after as many events as the user has pairs at this budget, one assumed-density step each:
  // online steps through the user's own (random) pairs; active asks that many questions, each on a training prompt
  // drawn at random (as a random pair's is) about the pair of its candidates of the largest expected information gain
  // under the posterior so far. Cached per user and budget until the next fit.
  const users::DimensionWeights& posterior(const UserData& user, MethodContext& ctx) {
    const std::string key = user.id + "#" + std::to_string(user.pairs.size());
    if (const auto it = posteriors_.find(key); it != posteriors_.end()) return it->second;
    users::OnlineUserModel model(prior_);
    if (!active_) {
      for (const auto& d : differences(user, ctx)) model.observe(d);
    } else {
      const auto& prompts = ctx.elicitation_prompts();
      const auto& s = candidate_scores(ctx);
      Rng rng(derive_seed(ctx.seed(), "active.order." + user.id));
      for (size_t i = 0; i < user.pairs.size(); ++i) {
        size_t best_prompt = 0;
        users::QueryPair q{0, 1, -1.0};
        for (size_t p = 0; p < prompts.size(); ++p) {
          const users::QueryPair c = users::choose_pair(model.posterior(), s[p], users::QueryPolicy::kInformation, rng);
          if (c.value > q.value) q = c, best_prompt = p;
        }
        const auto& e = prompts[best_prompt];
        const auto& sp = s[best_prompt];
        const bool first =
            ctx.ask(user.id, e.prompt, e.candidates[q.first], e.candidates[q.second], "active." + std::to_string(i));
        model.observe_choice(first ? sp[q.first] : sp[q.second], {first ? sp[q.second] : sp[q.first]});
      }
    }
    return posteriors_.emplace(key, model.posterior()).first->second;
  }

  // The scores of every training prompt's candidates ([prompt][candidate][K]), computed once per fit.
  const std::vector<std::vector<std::vector<double>>>& candidate_scores(MethodContext& ctx) {
    if (candidate_scores_.empty())
      for (const auto& e : ctx.elicitation_prompts()) {
        candidate_scores_.emplace_back();
        for (const auto& c : e.candidates) candidate_scores_.back().push_back(scores(e.prompt, c, ctx));
      }
    return candidate_scores_;
  }

  const bool active_, true_scores_;
  std::vector<std::vector<std::vector<double>>> candidate_scores_;
  std::shared_ptr<HeadScorer> scorer_;
  users::DimensionWeights prior_;
  std::map<std::string, users::DimensionWeights> posteriors_;
};

}  // namespace

std::unique_ptr<Method> make_online_method() { return std::make_unique<OnlineMethod>(false, false); }
std::unique_ptr<Method> make_active_method() { return std::make_unique<OnlineMethod>(true, false); }
std::unique_ptr<Method> make_online_true_method() { return std::make_unique<OnlineMethod>(false, true); }
std::unique_ptr<Method> make_active_true_method() { return std::make_unique<OnlineMethod>(true, true); }

}  // namespace palign::bench
