// `sample`: unpersonalized sampling from the policy, the base every generation figure is compared with. A user's
// response to a prompt is one of the prompt's pooled samples, picked by a hash of (user, prompt), so every user gets
// an independent draw from the same distribution. `greedy`: the policy's greedy continuation, the same for everyone
// (the base of greedy decoders such as args_greedy).
#include <map>

#include "methods.h"
#include "palign/bench/rng.h"
#include "palign/runtime/generate.h"

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

class GreedyMethod final : public Method {
 public:
  bool predicts() const override { return false; }
  bool generates() const override { return true; }
  double predict(const UserData&, const std::string&, const std::string&, const std::string&, MethodContext&) override {
    return 0.5;
  }
  void fit(const FitData&, MethodContext&) override {}
  Response generate(const UserData&, const std::string& prompt, MethodContext& ctx) override {
    auto it = cache_.find(prompt);
    if (it == cache_.end()) {
      runtime::GenerateOptions g = sampling_options(ctx, 0);
      g.sampling.greedy = true;
      const auto r = runtime::generate(ctx.model(), &ctx.tokenizer(), encode_prompt(ctx.tokenizer(), prompt), g, 1);
      it = cache_.emplace(prompt, response_of(r.at(0), static_cast<int64_t>(r.at(0).ids.size()))).first;
    }
    return it->second;
  }

 private:
  std::map<std::string, Response> cache_;  // one continuation per prompt, charged to every user
};
}  // namespace

std::unique_ptr<Method> make_sample_method() { return std::make_unique<SampleMethod>(); }
std::unique_ptr<Method> make_greedy_method() { return std::make_unique<GreedyMethod>(); }

}  // namespace palign::bench
