// The bench uses palign's seeded random numbers (palign/base/rng.h) under its own namespace.
#pragma once

#include "palign/base/rng.h"

namespace palign::bench {
using palign::derive_seed;
using palign::mix_seed;
using palign::Rng;
}  // namespace palign::bench
