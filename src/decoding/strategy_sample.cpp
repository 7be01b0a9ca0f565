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
    runtime::GenerateOptions o = request.options;
    if (adapter_) o.linear_hook = &*adapter_;
    std::vector<int64_t> prompt = request.prompt;
    if (user_table_.defined()) {
      prompt.insert(prompt.begin(), prefix_.begin(), prefix_.end());
      o.virtual_tokens = &user_table_;
    }
    return runtime::generate(model_, tokenizer_, prompt, o, request.n);
  }

 private:
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
