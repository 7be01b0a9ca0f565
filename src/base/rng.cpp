// Seed derivation and the uniform / normal transforms of Rng (see rng.h).
#include "palign/base/rng.h"

#include <cmath>

#include "palign/base/error.h"
#include "palign/base/hash.h"

namespace palign {

uint64_t mix_seed(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t seed, std::string_view stream) {
  const uint64_t h = fnv1a64(stream);
  return mix_seed(mix_seed(seed) ^ h);
}

double Rng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

uint64_t Rng::uniform_int(uint64_t n) {
  PALIGN_ASSERT(n > 0, "uniform_int needs n > 0");
  // The largest multiple of n that fits: values at or above it are redrawn.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return x % n;
}

double Rng::normal() {
  // Marsaglia & Bray (1964): (u, v) uniform in the unit disc, s = u² + v², z = u·sqrt(−2 ln s / s).
  while (true) {
    const double u = 2.0 * uniform() - 1.0;
    const double v = 2.0 * uniform() - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

}  // namespace palign
