// The bench's preference data: prompts, candidate responses, simulated users split into seen and unseen, and for each
// user a list of labelled training pairs (budget b = the first b of them) and held-out test pairs on other prompts,
// plus per-dimension pairs labelled by one grader each (Personalized Soups). Built from the hidden graders and
// population; written as JSON Lines in the DESIGN.md preference format with a manifest, the hidden ground truth in a
// separate hidden/ folder that methods never read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "palign/bench/users.h"
#include "palign/scoring/grader_set.h"

namespace palign::bench {

struct DatasetOptions {
  // The first n_train_prompts prompts give training pairs and per-dimension pairs; the rest give test pairs and the
  // generation prompts.
  int64_t n_train_prompts = 24;
  // Ascending; each user gets max(budgets) training pairs. The powers of two: the learning curves' points.
  std::vector<int64_t> budgets = {0, 1, 2, 4, 8, 16, 32, 64};
  int64_t test_pairs_per_user = 32;
  int64_t pairs_per_dimension = 64;  // per grader dimension
  double unseen_share = 0.25;  // round(n_users · unseen_share) users are unseen, stratified by persona and contrarian
  PopulationOptions population;  // n_users, personas, beta, ...
  uint64_t seed = 0;             // pairs and labels (the population has its own seed in population)
  // Append new fields here.
  std::string validate() const;  // "" when valid
};

// A labelled pair: item indices into BenchDataset::items (both responses to the same prompt).
struct LabeledPair {
  int64_t prompt = 0;
  int64_t chosen = 0;
  int64_t rejected = 0;
};

struct BenchItem {
  int64_t prompt = 0;     // index into BenchDataset::prompts
  std::string response;   // the continuation (what a method sees as the response)
  std::vector<double> z;  // hidden: the graders' z-scores of prompt + response
};

struct BenchDataset {
  DatasetOptions options;
  std::vector<std::string> dimensions;           // grader names, in z order
  std::vector<std::string> grader_versions;      // same order
  std::vector<std::string> prompts;              // [n_prompts]; train prompts first
  std::vector<std::vector<int64_t>> candidates;  // [n_prompts] -> item indices
  std::vector<BenchItem> items;
  Population population;                                  // hidden
  std::vector<int64_t> seen, unseen;                      // user indices
  std::vector<std::vector<LabeledPair>> train_pairs;      // [n_users], max(budgets) each, in order
  std::vector<std::vector<LabeledPair>> test_pairs;       // [n_users]
  std::vector<std::vector<LabeledPair>> dimension_pairs;  // [K], labelled by grader k alone

  int64_t n_train_prompts() const { return options.n_train_prompts; }
  bool is_test_prompt(int64_t prompt) const { return prompt >= options.n_train_prompts; }
  int64_t max_budget() const { return options.budgets.empty() ? 0 : options.budgets.back(); }
  // The full text the graders score: prompt + response.
  std::string full_text(int64_t item) const { return prompts[items[item].prompt] + items[item].response; }
  // R_u of an item (hidden).
  double utility(int64_t user, int64_t item) const;

  // Writes DIR/{train,test,dimensions}.jsonl ({"prompt", "chosen", "rejected", "user_id" | "dimension",
  // "pair_index"}), DIR/candidates.jsonl ({"prompt", "split", "responses"}), DIR/users.json ({"seen", "unseen"}),
  // DIR/manifest.json (format, version, seeds, sizes, budgets, grader names and versions, files) and the hidden
  // ground truth in DIR/hidden/{graders,population}.json. Throws kIo when DIR cannot be written.
  void write(const std::filesystem::path& dir, const scoring::GraderSet& graders) const;
};

// Grades the candidates (z of prompt + response), draws the population and the pairs. prompts[i] has the responses
// candidates[i] (at least two each). User i's training and test pairs come from the streams "train.<i>" and
// "test.<i>" of options.seed, so they do not depend on the other users; dimension k's from "dimension.<name>". A
// pair is two distinct responses to one prompt drawn uniformly, labelled P(a ≻ b) = σ(β · (R_u(a) − R_u(b))) (for a
// dimension pair, R = z_k). Throws kInvalidArgument on invalid options, too few prompts or candidates.
BenchDataset build_dataset(const scoring::GraderSet& graders, const std::vector<std::string>& prompts,
                           const std::vector<std::vector<std::string>>& candidates, const DatasetOptions& options);

}  // namespace palign::bench
