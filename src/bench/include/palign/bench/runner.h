// `palign bench`: builds the hidden graders, the simulated users and their preference data from the fortunes corpus
// and the policy's samples, runs every chosen method through fit / predict / generate, and measures held-out
// preference accuracy per budget (seen and unseen users; mean and worst decile) and, for generation, the hidden
// utility, the win-rate against unpersonalized sampling, the share of the oracle's gain and the cost per response.
// The result is typed (results.h), written as one JSON document (format "palign.bench.results") and rendered by
// report.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "palign/bench/dataset.h"
#include "palign/bench/method.h"
#include "palign/bench/results.h"

namespace palign::bench {

struct BenchOptions {
  std::string mode = "quick";        // a label for the report ("quick", "full", "custom")
  std::vector<std::string> methods;  // registry names; empty = all. "sample" and "oracle" are added to any run
                                     // with a generating method: they are the base and the ceiling of its figures.
  std::filesystem::path model_dir;   // the policy (the default model in the CLI)
  std::filesystem::path fortunes_dir = "/usr/share/games/fortunes";
  std::filesystem::path data_out;     // when set, the dataset is written there (dataset.h)
  int64_t n_prompts = 32;             // train + test prompts (DatasetOptions::n_train_prompts of them train)
  int64_t candidates_per_prompt = 8;  // N: the pool of each prompt, and best-of-N
  GenerationSettings generation;
  DatasetOptions dataset;
  uint64_t seed = 0;     // everything is derived from this one (dataset.seed, population.seed too)
  bool progress = true;  // progress bar on stderr
  // What the learned methods' backbone features pool (a scoring::FeatureSpec's text; empty: its recommended()).
  std::string features;
  // Append new fields here.

  // At most 2 minutes on 2 cores: 48 users (12 unseen), 24 + 8 prompts, 8 candidates each.
  static BenchOptions quick();
  // At most 30 minutes on 2 cores: 200 users (50 unseen), 96 + 32 prompts, 16 candidates each.
  static BenchOptions full();
  std::string validate() const;  // "" when valid
};

// Runs the bench; returns its results (to_json gives the results.json document). Throws kInvalidArgument for invalid
// options or unknown methods, kNotFound when the fortunes package or the model is missing.
BenchResults run_bench(const BenchOptions& options);

}  // namespace palign::bench
