// Steering vectors: directions in a decoder layer's output residual stream, one per preference dimension, added while
// decoding as Σ_k w_k · λ · v_k (the `steer` strategy; w from the user's profile or the command line).
// Mean-difference vectors (contrastive activation addition, Rimsky et al. 2024) come from per-dimension pairs: the
// residual stream at the layer averaged over each response's tokens, mean over chosen minus mean over rejected.
// BiPO-trained vectors come from the training module in the same file format.
//
// File format: one safetensors file; tensor NAME [D] float32 per dimension, metadata "format" = "palign.steering",
// "layer.NAME" = the decoder layer (0-based) whose output the vector is added to, "hidden_size" = D.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace palign::runtime {
class Model;
struct ModelConfig;
}  // namespace palign::runtime

namespace palign::decoding {

struct SteeringVector {
  std::string name;  // the preference dimension
  int64_t layer = 0;
  at::Tensor vector;  // [D] float32
};

// Throws kInvalidArgument for no vectors, an empty or repeated name, a vector that is not [D], or a layer outside the
// model; kIo when the file cannot be written.
void save_steering_vectors(const std::filesystem::path& file, const std::vector<SteeringVector>& vectors);
// Throws kNotFound (no file), kInvalidArgument (not a steering file, a vector whose size or layer does not fit the
// model), naming the file and the vector.
std::vector<SteeringVector> load_steering_vectors(const std::filesystem::path& file,
                                                  const runtime::ModelConfig& config);

// One preference pair as token ids: the prompt and the two responses that continue it.
struct TokenPair {
  std::vector<int64_t> prompt, chosen, rejected;
};

// The mean-difference vector of layer over pairs (each response's residual stream averaged over its own tokens,
// with the prompt as context). Throws kInvalidArgument for no pairs, an empty response, a layer outside the model.
at::Tensor mean_difference_vector(const runtime::Model& model, const std::vector<TokenPair>& pairs, int64_t layer);

// The residual hook adding Σ_k weights[k] · lambda · vectors[k].vector at each vector's layer (vectors at one layer
// are summed once, here). Throws kInvalidArgument when the weights are not one per vector.
std::function<void(int64_t, at::Tensor&)> steering_hook(const std::vector<SteeringVector>& vectors,
                                                        const std::vector<double>& weights, double lambda);

}  // namespace palign::decoding
