// sample: the plain sampler, n outputs in one batch, with the policy's LoRA adapter; a user-conditioned (pdpo)
// adapter's learned tokens for --user go before the prompt.
#include <ATen/core/Tensor.h>

#include <string>

#include "palign/base/error.h"
#include "palign/runtime/user_tokens.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class SampleStrategy final : public Strategy {
 public:
  explicit SampleStrategy(const StrategySetup& setup)
      : model_(*setup.model), tokenizer_(setup.tokenizer), adapter_(detail::load_adapter(setup, "sample", true)) {
    const std::string& user = setup.options.user;
    if (adapter_ && std::filesystem::exists(setup.adapter / runtime::kUserTokensFile)) {
      const auto tokens =
          runtime::UserTokens::load(setup.adapter / runtime::kUserTokensFile, model_.config().hidden_size);
      const int64_t slot = tokens.slot(user);
      if (!user.empty() && slot == 0)
        notes_.push_back("user " + user + " is not one of the adapter's " + std::to_string(tokens.users.size()) +
                         " users; generating for the generic user");
      prefix_ = tokens.prefix(slot, model_.config().vocab_size);
      user_table_ = tokens.table();
    } else {
      PALIGN_CHECK(user.empty(), ErrorCode::kInvalidArgument,
                   "[decoding.sample] --user with --strategy sample needs a user-conditioned --adapter (palign train "
                   "policy --method pdpo)");
    }
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, "sample");
    runtime::GenerateOptions o = options(request);
    auto out = runtime::generate(model_, tokenizer_, prompt(request), o, request.n);
    cost_ = detail::batch_cost(out);
    return out;
  }

  // Every request a row of one batch, each with its own prompt and seed.
  std::vector<runtime::GenerateResult> generate_batch(std::span<const StrategyRequest> requests) override {
    if (requests.empty() || !detail::batchable(requests)) return Strategy::generate_batch(requests);
    return detail::decode_rows(
        model_, tokenizer_, requests, options(requests[0]),
        [&](const StrategyRequest& r) {
          detail::refuse_request_profile(r, "sample");
          return prompt(r);
        },
        &cost_);
  }

 private:
  runtime::GenerateOptions options(const StrategyRequest& request) const {
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    if (user_table_.defined()) o.virtual_tokens = &user_table_;
    return o;
  }
  // The prompt after the user's learned tokens (a pdpo adapter's).
  std::vector<int64_t> prompt(const StrategyRequest& request) const {
    std::vector<int64_t> ids = prefix_;
    ids.insert(ids.end(), request.prompt.begin(), request.prompt.end());
    return ids;
  }

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  std::optional<runtime::LoraAdapter> adapter_;
  std::vector<int64_t> prefix_;
  at::Tensor user_table_;
};

}  // namespace

std::unique_ptr<Strategy> make_sample_strategy(const StrategySetup& setup) {
  return std::make_unique<SampleStrategy>(setup);
}

}  // namespace palign::decoding
