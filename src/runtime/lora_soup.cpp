// lora_soup (see lora.h): a weighted sum of adapters as one adapter of the summed rank.
#include <ATen/ATen.h>

#include <algorithm>

#include "palign/base/error.h"
#include "palign/runtime/lora.h"

namespace palign::runtime {

LoraAdapter lora_soup(const std::vector<const LoraAdapter*>& adapters, const std::vector<double>& weights) {
  PALIGN_CHECK(!adapters.empty(), ErrorCode::kInvalidArgument, "[runtime.lora_soup] no adapters to combine");
  PALIGN_CHECK(weights.size() == adapters.size(), ErrorCode::kInvalidArgument, "[runtime.lora_soup] ", weights.size(),
               " weights for ", adapters.size(), " adapters; give one weight per adapter");
  const ModelConfig& model = adapters[0]->model_config();
  LoraConfig cfg;
  cfg.r = 0;
  cfg.target_modules.clear();
  cfg.dropout = 0;
  constexpr auto kKinds = static_cast<int64_t>(LinearKind::kSentinel);
  for (const LoraAdapter* a : adapters) {
    a->check_compatible(model, "lora_soup");
    cfg.r += a->config().r;
    for (int64_t k = 0; k < kKinds; ++k) {
      const std::string name(linear_kind_name(static_cast<LinearKind>(k)));
      if (a->targets(static_cast<LinearKind>(k)) &&
          std::find(cfg.target_modules.begin(), cfg.target_modules.end(), name) == cfg.target_modules.end())
        cfg.target_modules.push_back(name);
    }
  }
  cfg.alpha = static_cast<double>(cfg.r);  // scaling 1: each part carries its own scaling in B
  cfg.base_model = adapters[0]->config().base_model;
  LoraAdapter soup = LoraAdapter::init(model, cfg, 0);
  at::NoGradGuard no_grad;
  for (int64_t layer = 0; layer < model.n_layer; ++layer)
    for (int64_t k = 0; k < kKinds; ++k) {
      const auto kind = static_cast<LinearKind>(k);
      if (!soup.targets(kind)) continue;
      at::Tensor a = soup.lora_a(layer, kind), b = soup.lora_b(layer, kind);  // [R, in], [out, R]
      a.zero_();
      b.zero_();
      int64_t at_rank = 0;
      for (size_t i = 0; i < adapters.size(); ++i) {
        const LoraAdapter& part = *adapters[i];
        const int64_t r = part.config().r;
        if (part.targets(kind)) {
          a.narrow(0, at_rank, r).copy_(part.lora_a(layer, kind));
          b.narrow(1, at_rank, r).copy_(part.lora_b(layer, kind) * (weights[i] * part.scaling()));
        }
        at_rank += r;
      }
    }
  return soup;
}

}  // namespace palign::runtime
