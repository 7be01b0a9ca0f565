// The bench's preference data: reproducible from the seed, budgets are prefixes, pairs stay within one prompt and
// on the right side of the train/test prompt split, labels are calibrated, and the JSON Lines files round-trip.
#include "palign/bench/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "palign/base/error.h"
#include "palign/bench/metrics.h"
#include "palign/scoring/fortunes.h"

using namespace palign;
using namespace palign::bench;
namespace fs = std::filesystem;

namespace {

class Dataset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto records = scoring::read_fortunes();
    graders_ = new scoring::GraderSet(scoring::GraderSet::build(records));
    // 12 prompts with 6 responses each, taken from held-out fortunes (no model needed).
    prompts_ = new std::vector<std::string>();
    candidates_ = new std::vector<std::vector<std::string>>();
    std::vector<std::string> texts;
    for (const auto& r : records)
      if (r.split == "test" && r.text.size() < 300) texts.push_back(r.text);
    size_t next = 0;
    for (int p = 0; p < 12; ++p) {
      prompts_->push_back("Prompt " + std::to_string(p) + ":");
      candidates_->emplace_back();
      for (int c = 0; c < 6; ++c) candidates_->back().push_back(" " + texts[next++]);
    }
  }
  static void TearDownTestSuite() {
    delete graders_;
    delete prompts_;
    delete candidates_;
  }
  static DatasetOptions options(uint64_t seed = 1) {
    DatasetOptions o;
    o.n_train_prompts = 8;
    o.budgets = {0, 4, 16};
    o.test_pairs_per_user = 20;
    o.pairs_per_dimension = 30;
    o.population.n_users = 40;
    o.population.seed = seed;
    o.seed = seed;
    return o;
  }
  static BenchDataset build(const DatasetOptions& o) { return build_dataset(*graders_, *prompts_, *candidates_, o); }

  static scoring::GraderSet* graders_;
  static std::vector<std::string>* prompts_;
  static std::vector<std::vector<std::string>>* candidates_;
};
scoring::GraderSet* Dataset::graders_ = nullptr;
std::vector<std::string>* Dataset::prompts_ = nullptr;
std::vector<std::vector<std::string>>* Dataset::candidates_ = nullptr;

bool same_pairs(const std::vector<LabeledPair>& a, const std::vector<LabeledPair>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].prompt != b[i].prompt || a[i].chosen != b[i].chosen || a[i].rejected != b[i].rejected) return false;
  return true;
}

TEST_F(Dataset, ShapesSplitsAndPromptSides) {
  const BenchDataset d = build(options());
  EXPECT_EQ(d.items.size(), 72u);
  EXPECT_EQ(d.seen.size(), 30u);
  EXPECT_EQ(d.unseen.size(), 10u);
  // Stratified by persona and contrarian status: each stratum's unseen share is within one user of 1/4.
  std::map<std::pair<bool, int>, std::pair<int, int>> strata;  // (contrarian, persona) -> (users, unseen)
  for (int64_t u = 0; u < 40; ++u) {
    const auto& user = d.population.users[static_cast<size_t>(u)];
    auto& [n, unseen] = strata[{user.contrarian, user.persona}];
    ++n;
    unseen += std::find(d.unseen.begin(), d.unseen.end(), u) != d.unseen.end();
  }
  for (const auto& [key, counts] : strata)
    EXPECT_LE(std::abs(counts.second - counts.first / 4.0), 1.0)
        << "contrarian " << key.first << " persona " << key.second << ": " << counts.second << " of " << counts.first;
  ASSERT_EQ(d.train_pairs.size(), 40u);
  ASSERT_EQ(d.dimension_pairs.size(), static_cast<size_t>(graders_->size()));
  for (int64_t u = 0; u < 40; ++u) {
    ASSERT_EQ(d.train_pairs[u].size(), 16u);
    ASSERT_EQ(d.test_pairs[u].size(), 20u);
    for (const auto& p : d.train_pairs[u]) {
      EXPECT_LT(p.prompt, 8);
      EXPECT_NE(p.chosen, p.rejected);
      EXPECT_EQ(d.items[p.chosen].prompt, p.prompt);
      EXPECT_EQ(d.items[p.rejected].prompt, p.prompt);
    }
    for (const auto& p : d.test_pairs[u]) {
      EXPECT_TRUE(d.is_test_prompt(p.prompt));
      EXPECT_EQ(d.items[p.chosen].prompt, p.prompt);
    }
  }
  for (const auto& pairs : d.dimension_pairs)
    for (const auto& p : pairs) EXPECT_FALSE(d.is_test_prompt(p.prompt));
  // The hidden z-scores are those of prompt + response.
  const auto z = graders_->z(d.full_text(5));
  EXPECT_EQ(z, d.items[5].z);
}

TEST_F(Dataset, ReproducibleFromTheSeedAndPerUserStreams) {
  const BenchDataset a = build(options(1)), b = build(options(1)), c = build(options(2));
  for (size_t u = 0; u < a.train_pairs.size(); ++u) {
    EXPECT_TRUE(same_pairs(a.train_pairs[u], b.train_pairs[u]));
    EXPECT_TRUE(same_pairs(a.test_pairs[u], b.test_pairs[u]));
  }
  int differ = 0;
  for (size_t u = 0; u < a.train_pairs.size(); ++u) differ += !same_pairs(a.train_pairs[u], c.train_pairs[u]);
  EXPECT_GT(differ, 30);
  // More users leave the first users' data unchanged.
  DatasetOptions more = options(1);
  more.population.n_users = 60;
  const BenchDataset m = build(more);
  for (size_t u = 0; u < a.train_pairs.size(); ++u) {
    EXPECT_TRUE(same_pairs(a.train_pairs[u], m.train_pairs[u]));
    EXPECT_EQ(a.population.users[u].weights, m.population.users[u].weights);
  }
}

// Labels follow σ(β·ΔR): the share of pairs whose chosen response has the higher true utility matches the mean of
// σ(β·|ΔR|) within its interval; per-dimension pairs likewise for their one grader.
TEST_F(Dataset, LabelsAreCalibrated) {
  DatasetOptions o = options(3);
  o.population.n_users = 200;
  o.budgets = {0, 64};
  o.pairs_per_dimension = 400;
  const BenchDataset d = build(o);
  const double beta = o.population.beta;
  int64_t agree = 0, n = 0;
  double expected = 0.0;
  for (int64_t u = 0; u < 200; ++u)
    for (const auto& p : d.train_pairs[u]) {
      const double delta = d.utility(u, p.chosen) - d.utility(u, p.rejected);
      if (delta == 0.0) continue;
      agree += delta > 0;
      expected += 1.0 / (1.0 + std::exp(-beta * std::abs(delta)));
      ++n;
    }
  const Estimate observed = wilson_interval(agree, n);
  std::printf("user labels: agreement %.4f [%.4f, %.4f], predicted %.4f (n=%lld)\n", observed.value, observed.lo,
              observed.hi, expected / n, static_cast<long long>(n));
  EXPECT_GE(expected / n, observed.lo);
  EXPECT_LE(expected / n, observed.hi);
  for (size_t k = 0; k < d.dimension_pairs.size(); ++k) {
    int64_t dim_agree = 0, dim_n = 0;
    double dim_expected = 0.0;
    for (const auto& p : d.dimension_pairs[k]) {
      const double delta = d.items[p.chosen].z[k] - d.items[p.rejected].z[k];
      if (delta == 0.0) continue;
      dim_agree += delta > 0;
      dim_expected += 1.0 / (1.0 + std::exp(-beta * std::abs(delta)));
      ++dim_n;
    }
    const Estimate e = wilson_interval(dim_agree, dim_n);
    std::printf("dimension %s: agreement %.3f [%.3f, %.3f], predicted %.3f\n", d.dimensions[k].c_str(), e.value, e.lo,
                e.hi, dim_expected / dim_n);
    EXPECT_GT(e.value, 0.5) << d.dimensions[k];
  }
}

TEST_F(Dataset, WritesJsonLinesAndManifest) {
  const BenchDataset d = build(options());
  const fs::path dir = fs::temp_directory_path() / ("palign_dataset_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  d.write(dir, *graders_);
  auto lines = [&](const std::string& name) {
    std::ifstream in(dir / name);
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  };
  const auto train = lines("train.jsonl");
  ASSERT_EQ(train.size(), 40u * 16u);
  EXPECT_EQ(train[0].at("user_id"), "u0000");
  EXPECT_EQ(train[0].at("pair_index"), 0);
  EXPECT_EQ(train[0].at("prompt"), d.prompts[d.train_pairs[0][0].prompt]);
  EXPECT_EQ(train[0].at("chosen"), d.items[d.train_pairs[0][0].chosen].response);
  EXPECT_EQ(train[0].at("rejected"), d.items[d.train_pairs[0][0].rejected].response);
  EXPECT_EQ(lines("test.jsonl").size(), 40u * 20u);
  const auto dims = lines("dimensions.jsonl");
  ASSERT_EQ(dims.size(), static_cast<size_t>(graders_->size()) * 30u);
  EXPECT_EQ(dims[0].at("dimension"), d.dimensions[0]);
  EXPECT_FALSE(dims[0].contains("user_id"));
  const auto cands = lines("candidates.jsonl");
  ASSERT_EQ(cands.size(), 12u);
  EXPECT_EQ(cands[11].at("split"), "test");
  EXPECT_EQ(cands[0].at("responses").size(), 6u);
  std::ifstream manifest_in(dir / "manifest.json");
  const auto manifest = nlohmann::json::parse(manifest_in);
  EXPECT_EQ(manifest.at("format"), "palign.bench.dataset");
  EXPECT_EQ(manifest.at("n_seen"), 30);
  EXPECT_EQ(manifest.at("graders").size(), static_cast<size_t>(graders_->size()));
  EXPECT_EQ(manifest.at("budgets"), nlohmann::json({0, 4, 16}));
  std::ifstream users_in(dir / "users.json");
  EXPECT_EQ(nlohmann::json::parse(users_in).at("unseen").size(), 10u);
  // The hidden ground truth reloads.
  std::ifstream pop_in(dir / "hidden" / "population.json");
  const std::string pop_text((std::istreambuf_iterator<char>(pop_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Population::from_json(pop_text).users[3].weights, d.population.users[3].weights);
  fs::remove_all(dir);
}

TEST_F(Dataset, BadOptionsAreOneLineErrors) {
  auto expect_invalid = [&](const DatasetOptions& o, const std::vector<std::vector<std::string>>& cands) {
    try {
      build_dataset(*graders_, *prompts_, cands, o);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      std::printf("error: %s\n", e.what());
    }
  };
  DatasetOptions o = options();
  o.budgets = {4, 0};
  expect_invalid(o, *candidates_);
  o = options();
  o.n_train_prompts = 12;  // no test prompts left
  expect_invalid(o, *candidates_);
  o = options();
  o.unseen_share = 1.0;
  expect_invalid(o, *candidates_);
  auto one_candidate = *candidates_;
  one_candidate[3].resize(1);
  expect_invalid(options(), one_candidate);
  auto too_few = *candidates_;
  too_few.pop_back();
  expect_invalid(options(), too_few);
}

}  // namespace
