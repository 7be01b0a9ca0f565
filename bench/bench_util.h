// Helpers shared by the programs in bench/: wall-clock timing (best of repeats; interleaved rounds so that a busy
// machine slows every compared case alike) and a random LoRA expert to serve.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "palign/base/timer.h"
#include "palign/runtime/lora.h"

namespace palign::bench_util {

using palign::Clock;
using palign::seconds_since;

// The p-quantile (0..1) of v, nearest rank; 0 for none.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(v.size() - 1, p * (v.size() - 1) + 0.5))];
}

// Best wall time of f over repeats runs, after one warm-up run.
template <typename F>
double best_seconds(int repeats, F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// Best wall time of each case over `rounds` rounds that run every case once, after one warm-up round.
inline std::vector<double> best_interleaved(int rounds, const std::vector<std::function<void()>>& cases) {
  for (const auto& f : cases) f();
  std::vector<double> best(cases.size(), 1e30);
  for (int round = 0; round < rounds; ++round) {
    for (size_t case_idx = 0; case_idx < cases.size(); ++case_idx) {
      const auto t0 = Clock::now();
      cases[case_idx]();
      best[case_idx] = std::min(best[case_idx], seconds_since(t0));
    }
  }
  return best;
}

// A rank-8 LoRA on q/k/v/o with small random B (a trained expert's scale), seeded.
inline runtime::LoraAdapter random_expert(const runtime::ModelConfig& c, uint64_t seed) {
  runtime::LoraAdapter a = runtime::LoraAdapter::init(
      c, {.r = 8, .alpha = 16, .target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"}, .base_model = {}}, seed);
  at::manual_seed(static_cast<int64_t>(seed));
  at::NoGradGuard no_grad;
  for (auto& [name, t] : a.named_parameters())
    if (name.find("lora_B") != std::string::npos) t.copy_(at::randn_like(t) * 0.02);
  return a;
}

}  // namespace palign::bench_util
