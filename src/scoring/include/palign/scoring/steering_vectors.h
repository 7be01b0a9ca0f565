// Steering vectors: directions in a decoder layer's output residual stream, one per preference dimension, added while
// decoding as Σ_k w_k · λ · v_k (decoding/steering.h, the `steer` strategy).
// Mean-difference vectors (contrastive activation addition, Rimsky et al. 2024) come from per-dimension pairs: the
// residual stream at the layer averaged over each response's tokens, mean over chosen minus mean over rejected.
// BiPO-trained vectors come from the training module in the same file format (training/steering_trainer.h).
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

namespace palign::scoring {

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
// with the prompt as context). progress(rows done, rows) after each batch of rows. Throws kInvalidArgument for no
// pairs, an empty response, a layer outside the model.
at::Tensor mean_difference_vector(const runtime::Model& model, const std::vector<TokenPair>& pairs, int64_t layer,
                                  const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace palign::scoring
