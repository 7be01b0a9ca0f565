// Seeded random numbers (simulated users, data splits): std::mt19937_64 (whose output the C++ standard fixes) with hand-written
// uniform and normal transforms, so that simulated users and their labels are the same with every standard library.
// Not for cryptography; not thread-safe (give each thread its own Rng).
#pragma once

#include <cstdint>
#include <random>
#include <string_view>

namespace palign {

// SplitMix64 finaliser (Steele et al. 2014): a bijective 64-bit mixer, used to derive independent seeds.
uint64_t mix_seed(uint64_t x);

// A seed for a named sub-stream of `seed` (FNV-1a 64 of the name, mixed with the seed), e.g. "personas", "users".
uint64_t derive_seed(uint64_t seed, std::string_view stream);

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  uint64_t next_u64() { return engine_(); }
  // Uniform on [0, 1) with 53 random bits: (x >> 11) * 2^-53.
  double uniform();
  // Uniform integer in [0, n); n > 0. Rejection sampling, so no modulo bias.
  uint64_t uniform_int(uint64_t n);
  // Standard normal by Marsaglia's polar method (only log and sqrt; the spare value is discarded).
  double normal();
  double normal(double mean, double sd) { return mean + sd * normal(); }
  // True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace palign
