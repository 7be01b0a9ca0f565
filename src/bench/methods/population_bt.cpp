// `bt`: the one-size-fits-all reward. A linear Bradley–Terry reward on the policy backbone's pooled features, fitted
// on every seen user's pairs pooled together (it ignores who labelled them); predicts σ(r(a) − r(b)) for everyone and
// generates best-of-N over the pooled samples by r.
#include <utility>

#include "methods.h"
#include "palign/bench/users.h"
#include "palign/training/linear_bt.h"

namespace palign::bench {

using training::LinearBt;

namespace {
class PopulationBtMethod final : public Method {
 public:
  bool predicts() const override { return true; }
  bool generates() const override { return true; }
  void fit(const FitData& data, MethodContext& ctx) override {
    std::vector<PairText> pairs;  // everyone's, as one user's (the L2 strength picked on held-out prompts)
    for (const auto& user : data.users) pairs.insert(pairs.end(), user.pairs.begin(), user.pairs.end());
    reward_ = fit_feature_head(pairs, ctx);
  }
  double predict(const UserData&, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    return sigmoid(reward_.score(ctx.features(prompt, a)) - reward_.score(ctx.features(prompt, b)));
  }
  Response generate(const UserData&, const std::string& prompt, MethodContext& ctx) override {
    const auto& pool = ctx.pool(prompt);
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& r : pool) texts.emplace_back(prompt, r.text);
    ctx.precompute_features(texts);
    return best_of_pool(
        pool, [&](const Response& r) { return reward_.score(ctx.features(prompt, r.text)); }, /*extra_passes=*/1);
  }

 private:
  LinearBt reward_;
};
}  // namespace

std::unique_ptr<Method> make_population_bt_method() { return std::make_unique<PopulationBtMethod>(); }

}  // namespace palign::bench
