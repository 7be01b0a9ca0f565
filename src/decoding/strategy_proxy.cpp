// proxy: proxy-tuning (Liu et al. 2024), base logits + α · (expert logits − anti-expert logits); DeRa is the same
// rule between a base and an aligned model.
#include "palign/base/error.h"
#include "strategy_internal.h"

namespace palign::decoding {

namespace {

class ProxyStrategy final : public Strategy {
 public:
  explicit ProxyStrategy(const StrategySetup& setup)
      : model_(*setup.model), tokenizer_(setup.tokenizer), models_(setup), alpha_(setup.options.alpha) {
    detail::refuse_adapter(setup);
    PALIGN_CHECK(!setup.options.expert.empty() && !setup.options.antiexpert.empty(), ErrorCode::kInvalidArgument,
                 "[decoding.proxy] --strategy proxy needs --expert DIR and --antiexpert DIR (and --alpha A)");
    expert_ = &models_.load(setup.options.expert);
    anti_ = &models_.load(setup.options.antiexpert);
  }

  std::vector<runtime::GenerateResult> generate(const StrategyRequest& request) override {
    return detail::decode_each([&] { return make_proxy(model_, *expert_, *anti_, alpha_, request.prompt); },
                               request.prompt, request, model_, tokenizer_);
  }

 private:
  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  detail::ModelSet models_;
  double alpha_;
  const runtime::Model* expert_ = nullptr;
  const runtime::Model* anti_ = nullptr;
};

}  // namespace

std::unique_ptr<Strategy> make_proxy_strategy(const StrategySetup& setup) {
  return std::make_unique<ProxyStrategy>(setup);
}

}  // namespace palign::decoding
