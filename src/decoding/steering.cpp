// Steering vectors' residual hook (see steering.h).
#include "palign/decoding/steering.h"

#include <ATen/ATen.h>

#include <map>

#include "palign/base/error.h"

namespace palign::decoding {

std::map<int64_t, at::Tensor> steering_deltas(const std::vector<scoring::SteeringVector>& vectors,
                                              const std::vector<double>& weights, double lambda) {
  PALIGN_CHECK(weights.size() == vectors.size(), ErrorCode::kInvalidArgument, "[decoding.steer] ", weights.size(),
               " weights for ", vectors.size(), " steering vectors; give one weight per vector");
  std::map<int64_t, at::Tensor> per_layer;  // layer -> Σ w_k · λ · v_k
  for (size_t k = 0; k < vectors.size(); ++k) {
    const at::Tensor add = vectors[k].vector.detach().to(at::kFloat) * (weights[k] * lambda);
    auto [it, fresh] = per_layer.emplace(vectors[k].layer, add);
    if (!fresh) it->second = it->second + add;
  }
  return per_layer;
}

std::function<void(int64_t, at::Tensor&)> steering_hook(const std::vector<scoring::SteeringVector>& vectors,
                                                        const std::vector<double>& weights, double lambda) {
  return [per_layer = steering_deltas(vectors, weights, lambda)](int64_t layer, at::Tensor& x) {
    const auto it = per_layer.find(layer);
    if (it != per_layer.end()) x = x + it->second;
  };
}

}  // namespace palign::decoding
