// Next-token sampling from logits: greedy, temperature, top-k, top-p, min-p, repetition penalty, with a seeded
// generator so that runs are reproducible. Processing order follows transformers' generate(): repetition penalty,
// then temperature, top-k, top-p, min-p.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>

namespace palign::runtime {

struct SamplingOptions {
  bool greedy = false;              // argmax; the other fields are ignored
  float temperature = 1.0f;         // > 0
  int64_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1); 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off (CTRL, Keskar et al. 2019: logit / p if > 0 else logit * p)
  uint64_t seed = 0;
  // Append new fields here.

  // Empty when valid, else a one-line message naming the bad field and its allowed range.
  std::string validate() const;
};

// Final next-token probabilities [V] float32 after every processing step (zeros where filtered out); greedy gives a
// one-hot. logits: [V]; history: the tokens so far (for the repetition penalty).
at::Tensor next_token_probs(const at::Tensor& logits, const SamplingOptions& options, std::span<const int64_t> history);

// Holds the generator; one per sequence (or per request) for reproducibility.
class Sampler {
 public:
  explicit Sampler(SamplingOptions options);
  const SamplingOptions& options() const { return options_; }
  // Draws the next token. logits: [V] float32.
  int64_t sample(const at::Tensor& logits, std::span<const int64_t> history);
  // A uniform draw in [0, 1) from the sampler's generator (53 random bits; identical on every platform).
  double uniform();

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace palign::runtime
