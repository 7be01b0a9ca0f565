// proxy: proxy-tuning (Liu et al. 2024), base logits + α · (expert logits − anti-expert logits); DeRa is the same
// rule between a base and an aligned model.
#include "palign/base/error.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class ProxyStrategy final : public Strategy {
 public:
  explicit ProxyStrategy(const StrategySetup& setup)
      : models_(setup),
        model_(models_.policy(setup, "proxy")),
        tokenizer_(setup.tokenizer),
        alpha_(setup.options.alpha) {
    PALIGN_CHECK(!setup.options.expert.empty() && !setup.options.antiexpert.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.proxy] --strategy proxy needs --expert DIR and --antiexpert DIR (and --alpha A)");
    expert_ = &models_.load(setup.options.expert);
    anti_ = &models_.load(setup.options.antiexpert);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    detail::refuse_request_profile(request, "proxy");
    return detail::decode_each([&] { return make_proxy(model_, *expert_, *anti_, alpha_, request.prompt); },
                               request.prompt, request, model_, tokenizer_, /*passes_per_token=*/3, &cost_);
  }

 private:
  detail::ModelSet models_;
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  double alpha_;
  const runtime::Model* expert_ = nullptr;
  const runtime::Model* anti_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_proxy_strategy(const StrategySetup& setup) {
  return std::make_unique<ProxyStrategy>(setup);
}

}  // namespace palign::decoding
