// The steering vectors' residual hook: Σ_k w_k · λ · v_k added to a decoder layer's output residual stream while
// decoding (the `steer` strategy; w from the user's profile or the command line). The vectors, their file format and
// mean-difference vectors are in scoring/steering_vectors.h; BiPO-trained ones in training/steering_trainer.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "palign/scoring/steering_vectors.h"

namespace palign::decoding {

struct Personalization;

// layer -> Σ_k weights[k] · lambda · vectors[k].vector over the vectors at that layer ([D] float32, summed in the
// vectors' order). Throws kInvalidArgument when the weights are not one per vector.
std::map<int64_t, at::Tensor> steering_deltas(const std::vector<scoring::SteeringVector>& vectors,
                                              const std::vector<double>& weights, double lambda);

// The residual hook adding Σ_k weights[k] · lambda · vectors[k].vector at each vector's layer (vectors at one layer
// are summed once, here). Throws kInvalidArgument when the weights are not one per vector.
std::function<void(int64_t, at::Tensor&)> steering_hook(const std::vector<scoring::SteeringVector>& vectors,
                                                        const std::vector<double>& weights, double lambda);

// The steer strategy's deltas for one request (a row of the server's batch): the weights from weights_text (numbers
// in the vectors' order, or name=number pairs) when given, else the profile's weights by vector name (a name it does
// not weigh gets 0); then steering_deltas. Throws kInvalidArgument for weights that do not fit the vectors, or
// neither weights nor a profile.
std::map<int64_t, at::Tensor> request_steering_deltas(const std::vector<scoring::SteeringVector>& vectors,
                                                      const std::string& weights_text, const Personalization* profile,
                                                      double lambda);

}  // namespace palign::decoding
