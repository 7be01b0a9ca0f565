// `oracle`: the upper bound, labelled as such. It reads the hidden utility R_u: it predicts with the true label
// probability σ(β · (R_u(a) − R_u(b))) (the best any predictor can do on noisy labels), and generates by best-of-N
// over the prompt's pooled samples reranked by R_u.
// `oracle_mean`: the same with the population's mean utility in place of R_u — it knows the graders but not the
// user, so the gap between the two is what personalization can add over a perfect one-size-fits-all reward.
#include <cmath>

#include "methods.h"
#include "palign/base/error.h"
#include "palign/bench/users.h"

namespace palign::bench {

namespace {
class OracleMethod final : public Method {
 public:
  explicit OracleMethod(bool population) : population_(population) {}
  bool predicts() const override { return true; }
  bool generates() const override { return true; }
  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    const HiddenTruth& truth = checked_truth(ctx);
    return sigmoid(truth.beta * (utility(truth, user, prompt, a) - utility(truth, user, prompt, b)));
  }
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const HiddenTruth& truth = checked_truth(ctx);
    return best_of_pool(ctx.pool(prompt), [&](const Response& r) { return utility(truth, user, prompt, r.text); });
  }

 private:
  double utility(const HiddenTruth& truth, const UserData& user, const std::string& prompt,
                 const std::string& response) const {
    return population_ ? truth.population_utility(prompt, response) : truth.utility(user.id, prompt, response);
  }
  static const HiddenTruth& checked_truth(const MethodContext& ctx) {
    PALIGN_CHECK(ctx.truth() != nullptr, ErrorCode::kInternal,
                 "[bench.oracle] the oracle runs without the hidden truth; the runner must provide it");
    return *ctx.truth();
  }
  bool population_;
};
}  // namespace

std::unique_ptr<Method> make_oracle_method() { return std::make_unique<OracleMethod>(/*population=*/false); }
std::unique_ptr<Method> make_population_oracle_method() { return std::make_unique<OracleMethod>(/*population=*/true); }

}  // namespace palign::bench
