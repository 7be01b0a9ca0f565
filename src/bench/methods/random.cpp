// `random`: a coin flip for every pair. The floor every predictor must beat; sits at 50% within its interval.
#include "methods.h"
#include "palign/bench/rng.h"

namespace palign::bench {

namespace {
class RandomMethod final : public Method {
 public:
  bool predicts() const override { return true; }
  bool generates() const override { return false; }
  double predict(const UserData& user, const std::string& prompt, const std::string& a, const std::string& b,
                 MethodContext& ctx) override {
    // Seeded by the question itself, so that the answer does not depend on the order of the calls.
    Rng rng(derive_seed(ctx.seed(), "random." + user.id + "\x1f" + prompt + "\x1f" + a + "\x1f" + b));
    return rng.bernoulli(0.5) ? 1.0 : 0.0;
  }
  Response generate(const UserData&, const std::string&, MethodContext&) override { return {}; }
};
}  // namespace

std::unique_ptr<Method> make_random_method() { return std::make_unique<RandomMethod>(); }

}  // namespace palign::bench
