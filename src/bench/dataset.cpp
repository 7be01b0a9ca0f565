// Building and writing the bench's preference data (see dataset.h).
#include "palign/bench/dataset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/bench/rng.h"

namespace palign::bench {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "palign.bench.dataset";
constexpr int kVersion = 1;

// Two distinct candidates of a random prompt in [first, last), labelled by P(a ≻ b) = σ(beta · (r(a) − r(b))).
template <typename Reward>
LabeledPair draw_pair(const BenchDataset& d, int64_t first, int64_t last, double beta, const Reward& reward, Rng& rng) {
  const int64_t prompt = first + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(last - first)));
  const auto& cands = d.candidates[prompt];
  const uint64_t n = cands.size();
  const uint64_t i = rng.uniform_int(n);
  uint64_t j = rng.uniform_int(n - 1);
  if (j >= i) ++j;
  const int64_t a = cands[i], b = cands[j];
  const bool a_wins = rng.uniform() < sigmoid(beta * (reward(a) - reward(b)));
  return {prompt, a_wins ? a : b, a_wins ? b : a};
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[bench.dataset] cannot write ", path.string(),
               "; check the folder's permissions and free space");
}

}  // namespace

std::string DatasetOptions::validate() const {
  if (n_train_prompts < 1) return "n_train_prompts must be >= 1";
  if (budgets.empty()) return "budgets must not be empty";
  for (size_t i = 0; i < budgets.size(); ++i) {
    if (budgets[i] < 0) return "budgets must be >= 0";
    if (i > 0 && budgets[i] <= budgets[i - 1]) return "budgets must be strictly ascending";
  }
  if (test_pairs_per_user < 1) return "test_pairs_per_user must be >= 1";
  if (pairs_per_dimension < 0) return "pairs_per_dimension must be >= 0";
  if (!(unseen_share >= 0.0 && unseen_share < 1.0)) return "unseen_share must be in [0, 1)";
  return population.validate();
}

double BenchDataset::utility(int64_t user, int64_t item) const {
  return bench::utility(population.users[user], items[item].z);
}

BenchDataset build_dataset(const scoring::GraderSet& graders, const std::vector<std::string>& prompts,
                           const std::vector<std::vector<std::string>>& candidates, const DatasetOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[bench.dataset] ", problem);
  PALIGN_CHECK(prompts.size() == candidates.size(), ErrorCode::kInvalidArgument, "[bench.dataset] ", prompts.size(),
               " prompts but ", candidates.size(), " candidate lists");
  PALIGN_CHECK(static_cast<int64_t>(prompts.size()) > options.n_train_prompts, ErrorCode::kInvalidArgument,
               "[bench.dataset] ", prompts.size(), " prompts leave no test prompts after ", options.n_train_prompts,
               " training prompts; ask for more prompts");
  BenchDataset d;
  d.options = options;
  d.dimensions = graders.names();
  for (const auto& dim : graders.dimensions()) d.grader_versions.push_back(dim.version);
  d.prompts = prompts;
  for (size_t p = 0; p < prompts.size(); ++p) {
    PALIGN_CHECK(candidates[p].size() >= 2, ErrorCode::kInvalidArgument, "[bench.dataset] prompt ", p, " has ",
                 candidates[p].size(), " candidates; pairs need at least 2");
    d.candidates.emplace_back();
    for (const auto& response : candidates[p]) {
      d.candidates.back().push_back(static_cast<int64_t>(d.items.size()));
      d.items.push_back({static_cast<int64_t>(p), response, graders.z(prompts[p] + response)});
    }
  }
  d.population = make_population(graders.size(), options.population);
  const int64_t n_users = options.population.n_users;
  // The unseen users, stratified by persona and contrarian status: users ordered by stratum, every 1/share-th of
  // that order unseen (systematic sampling), so each stratum is split in about the shared proportion.
  std::vector<int64_t> order(static_cast<size_t>(n_users));
  for (int64_t u = 0; u < n_users; ++u) order[static_cast<size_t>(u)] = u;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const auto& ua = d.population.users[static_cast<size_t>(a)];
    const auto& ub = d.population.users[static_cast<size_t>(b)];
    return std::pair(ua.contrarian, ua.persona) < std::pair(ub.contrarian, ub.persona);
  });
  std::vector<bool> unseen(static_cast<size_t>(n_users), false);
  for (int64_t i = 0; i < n_users; ++i)
    unseen[static_cast<size_t>(order[static_cast<size_t>(i)])] =
        std::floor(static_cast<double>(i + 1) * options.unseen_share + 0.5) >
        std::floor(static_cast<double>(i) * options.unseen_share + 0.5);
  for (int64_t u = 0; u < n_users; ++u) (unseen[static_cast<size_t>(u)] ? d.unseen : d.seen).push_back(u);

  const double beta = options.population.beta;
  const auto n_prompts = static_cast<int64_t>(prompts.size());
  d.train_pairs.resize(n_users);
  d.test_pairs.resize(n_users);
  for (int64_t u = 0; u < n_users; ++u) {
    auto reward = [&](int64_t item) { return d.utility(u, item); };
    Rng train_rng(derive_seed(options.seed, "train." + std::to_string(u)));
    for (int64_t i = 0; i < d.max_budget(); ++i)
      d.train_pairs[u].push_back(draw_pair(d, 0, options.n_train_prompts, beta, reward, train_rng));
    Rng test_rng(derive_seed(options.seed, "test." + std::to_string(u)));
    for (int64_t i = 0; i < options.test_pairs_per_user; ++i)
      d.test_pairs[u].push_back(draw_pair(d, options.n_train_prompts, n_prompts, beta, reward, test_rng));
  }
  for (size_t k = 0; k < d.dimensions.size(); ++k) {
    auto reward = [&](int64_t item) { return d.items[item].z[k]; };
    Rng rng(derive_seed(options.seed, "dimension." + d.dimensions[k]));
    d.dimension_pairs.emplace_back();
    for (int64_t i = 0; i < options.pairs_per_dimension; ++i)
      d.dimension_pairs.back().push_back(draw_pair(d, 0, options.n_train_prompts, beta, reward, rng));
  }
  return d;
}

void BenchDataset::write(const fs::path& dir, const scoring::GraderSet& graders) const {
  std::error_code ec;
  fs::create_directories(dir / "hidden", ec);
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[bench.dataset] cannot create ", (dir / "hidden").string(), ": ", ec.message());
  auto pair_line = [&](const LabeledPair& p, size_t index, const char* key, const std::string& who) {
    return json{{"prompt", prompts[p.prompt]},
                {"chosen", items[p.chosen].response},
                {"rejected", items[p.rejected].response},
                {key, who},
                {"pair_index", index}}
               .dump(-1, ' ', false, json::error_handler_t::replace) +
           "\n";
  };
  std::string train, test, dims;
  for (size_t u = 0; u < train_pairs.size(); ++u) {
    const std::string& id = population.users[u].id;
    for (size_t i = 0; i < train_pairs[u].size(); ++i) train += pair_line(train_pairs[u][i], i, "user_id", id);
    for (size_t i = 0; i < test_pairs[u].size(); ++i) test += pair_line(test_pairs[u][i], i, "user_id", id);
  }
  for (size_t k = 0; k < dimension_pairs.size(); ++k)
    for (size_t i = 0; i < dimension_pairs[k].size(); ++i)
      dims += pair_line(dimension_pairs[k][i], i, "dimension", dimensions[k]);
  std::string cands;
  for (size_t p = 0; p < prompts.size(); ++p) {
    json responses = json::array();
    for (int64_t item : candidates[p]) responses.push_back(items[item].response);
    cands += json{{"prompt", prompts[p]},
                  {"split", is_test_prompt(static_cast<int64_t>(p)) ? "test" : "train"},
                  {"responses", responses}}
                 .dump(-1, ' ', false, json::error_handler_t::replace) +
             "\n";
  }
  json seen_ids = json::array(), unseen_ids = json::array();
  for (int64_t u : seen) seen_ids.push_back(population.users[u].id);
  for (int64_t u : unseen) unseen_ids.push_back(population.users[u].id);
  json graders_json = json::array();
  for (size_t k = 0; k < dimensions.size(); ++k)
    graders_json.push_back({{"name", dimensions[k]}, {"version", grader_versions[k]}});
  const json manifest = {
      {"format", kFormat},
      {"version", kVersion},
      {"seed", options.seed},
      {"population_seed", options.population.seed},
      {"beta", options.population.beta},
      {"budgets", options.budgets},
      {"budget_rule", "a user's budget-b training pairs are their first b lines (pair_index < b) in train.jsonl"},
      {"n_users", population.users.size()},
      {"n_seen", seen.size()},
      {"n_unseen", unseen.size()},
      {"n_prompts", prompts.size()},
      {"n_train_prompts", options.n_train_prompts},
      {"n_items", items.size()},
      {"test_pairs_per_user", options.test_pairs_per_user},
      {"pairs_per_dimension", options.pairs_per_dimension},
      {"graders", graders_json},
      {"files",
       {{"train", "train.jsonl"},
        {"test", "test.jsonl"},
        {"dimensions", "dimensions.jsonl"},
        {"candidates", "candidates.jsonl"},
        {"users", "users.json"}}},
      {"hidden", {"hidden/graders.json", "hidden/population.json"}},
      {"hidden_note", "ground truth for evaluation only; methods must not read hidden/"}};
  write_text(dir / "train.jsonl", train);
  write_text(dir / "test.jsonl", test);
  write_text(dir / "dimensions.jsonl", dims);
  write_text(dir / "candidates.jsonl", cands);
  write_text(dir / "users.json", json{{"seen", seen_ids}, {"unseen", unseen_ids}}.dump(2) + "\n");
  write_text(dir / "hidden" / "graders.json", graders.to_json());
  write_text(dir / "hidden" / "population.json", population.to_json());
  write_text(dir / "manifest.json", manifest.dump(2) + "\n");
}

}  // namespace palign::bench
