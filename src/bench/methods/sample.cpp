// `sample`: unpersonalized sampling from the policy, the base every generation figure is compared with. A user's
// response to a prompt is one of the prompt's pooled samples, picked by a hash of (user, prompt), so every user gets
// an independent draw from the same distribution.
#include "methods.h"
#include "palign/bench/rng.h"

namespace palign::bench {

namespace {
class SampleMethod final : public Method {
 public:
  bool predicts() const override { return false; }
  bool generates() const override { return true; }
  double predict(const UserData&, const std::string&, const std::string&, const std::string&, MethodContext&) override {
    return 0.5;
  }
  Response generate(const UserData& user, const std::string& prompt, MethodContext& ctx) override {
    const auto& pool = ctx.pool(prompt);
    Rng rng(derive_seed(ctx.seed(), "sample." + user.id + "\x1f" + prompt));
    return pool[rng.uniform_int(pool.size())];
  }
};
}  // namespace

std::unique_ptr<Method> make_sample_method() { return std::make_unique<SampleMethod>(); }

}  // namespace palign::bench
