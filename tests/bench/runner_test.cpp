// The bench end to end on a small run with the default model: the random predictor sits at 50% within its interval,
// the oracle beats unpersonalized sampling and is the ceiling, the same seed gives the same figures, and bad method
// names fail before any work.
#include "palign/bench/runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/bench/method.h"

using namespace palign;
using namespace palign::bench;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path default_model_dir() { return fs::path(PALIGN_TEST_DATA_DIR) / ".." / ".." / "models" / "default"; }

BenchOptions small_options(uint64_t seed = 0) {
  BenchOptions o = BenchOptions::quick();
  o.mode = "test";
  o.model_dir = default_model_dir();
  o.n_prompts = 10;
  o.candidates_per_prompt = 6;
  o.generation.max_new_tokens = 24;
  o.dataset.n_train_prompts = 6;
  o.dataset.budgets = {0, 4, 16};
  o.dataset.test_pairs_per_user = 24;
  o.dataset.pairs_per_dimension = 16;
  o.dataset.population.n_users = 24;
  o.seed = seed;
  o.progress = false;
  return o;
}

const json* find_row(const json& rows, const std::string& method, int budget = -1, const std::string& group = "") {
  for (const auto& r : rows)
    if (r.at("method") == method && (budget < 0 || r.at("budget") == budget) &&
        (group.empty() || r.at("group") == group))
      return &r;
  return nullptr;
}

class Runner : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { results_ = new json(to_json(run_bench(small_options()))); }
  static void TearDownTestSuite() { delete results_; }
  static json* results_;
};
json* Runner::results_ = nullptr;

TEST_F(Runner, ResultsDocumentHasEveryMethodBudgetAndGroup) {
  const json& r = *results_;
  EXPECT_EQ(r.at("format"), "palign.bench.results");
  EXPECT_EQ(r.at("config").at("n_seen"), 18);
  EXPECT_EQ(r.at("config").at("n_unseen"), 6);
  size_t in_default = 0;
  for (const auto& m : method_registry()) in_default += m.in_default;
  EXPECT_EQ(r.at("methods").size(), in_default);
  for (const char* m : {"random", "bt", "retrieval", "prm", "pal", "vpl", "multi_linear", "oracle", "oracle_mean"})
    for (int b : {0, 4, 16})
      for (const char* g : {"seen", "unseen"}) EXPECT_NE(find_row(r.at("accuracy"), m, b, g), nullptr) << m << b << g;
  EXPECT_EQ(find_row(r.at("accuracy"), "sample"), nullptr);  // sample does not predict
  for (const char* m : {"sample", "bt", "retrieval", "prm", "pal", "vpl", "multi_linear", "oracle"})
    EXPECT_NE(find_row(r.at("generation"), m), nullptr);
  EXPECT_EQ(r.at("per_user").size(), 24u);
  std::printf("wall %.1f s\n", r.at("wall_seconds").get<double>());
  for (const auto& row : r.at("accuracy"))
    std::printf("%-12s b=%-3d %-15s acc %.3f [%.3f, %.3f] expected %.3f\n", row.at("method").get<std::string>().c_str(),
                row.at("budget").get<int>(), row.at("group").get<std::string>().c_str(),
                row.at("mean").at("value").get<double>(), row.at("mean").at("lo").get<double>(),
                row.at("mean").at("hi").get<double>(), row.at("expected").at("value").get<double>());
  for (const auto& row : r.at("generation"))
    std::printf("%-10s utility %.3f tokens/response %.1f\n", row.at("method").get<std::string>().c_str(),
                row.at("utility").at("value").get<double>(), row.at("cost").at("tokens_per_response").get<double>());
}

// The random predictor is at chance: 0.5 lies in its interval at every budget and group.
// results.json is one typed structure's JSON form: reading the document back and writing it again gives it unchanged.
TEST_F(Runner, ResultsReadBackWriteTheSameDocument) {
  const json again = to_json(results_from_json(results_->dump()));
  EXPECT_EQ(again, *results_) << "first difference: " << json::diff(*results_, again).dump().substr(0, 300);
  EXPECT_FALSE(results_->at("per_user").at(0).at("utility").empty());
}

TEST_F(Runner, RandomPredictorSitsAtChance) {
  for (const auto& row : results_->at("accuracy")) {
    if (row.at("method") != "random") continue;
    EXPECT_LE(row.at("mean").at("lo").get<double>(), 0.5) << row.dump();
    EXPECT_GE(row.at("mean").at("hi").get<double>(), 0.5) << row.dump();
  }
}

// Without feedback (budget 0 and no population data) the learned predictors have nothing to go on: exactly 0.5.
TEST_F(Runner, NoDataMeansNoInformation) {
  EXPECT_DOUBLE_EQ(find_row(results_->at("accuracy"), "bt", 0, "seen")->at("mean").at("value").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(find_row(results_->at("accuracy"), "retrieval", 0, "unseen")->at("mean").at("value").get<double>(),
                   0.5);
}

TEST_F(Runner, OracleBeatsTheBaseAndIsTheCeiling) {
  const json& gen = results_->at("generation");
  const json* oracle = find_row(gen, "oracle");
  const json* base = find_row(gen, "sample");
  ASSERT_TRUE(oracle && base);
  EXPECT_GT(oracle->at("utility").at("lo").get<double>(), base->at("utility").at("hi").get<double>());
  EXPECT_GT(oracle->at("win_rate").at("value").get<double>(), 0.5);
  // Each method's share of the oracle's gain is (u_method − u_sample) / (u_oracle − u_sample), recomputed here from
  // the rows' utilities.
  const double u_base = base->at("utility").at("value").get<double>();
  const double u_oracle = oracle->at("utility").at("value").get<double>();
  int shares = 0;
  for (const auto& row : gen) {
    if (row.at("oracle_gain_share").is_null()) continue;
    const json& share = row.at("oracle_gain_share");
    const double expected = (row.at("utility").at("value").get<double>() - u_base) / (u_oracle - u_base);
    EXPECT_NEAR(share.at("value").get<double>(), expected, 1e-9) << row.at("method");
    EXPECT_LE(share.at("lo").get<double>(), share.at("hi").get<double>()) << row.at("method");
    // The paired difference from the base is the difference of the utilities.
    EXPECT_NEAR(row.at("vs_base").at("value").get<double>(), row.at("utility").at("value").get<double>() - u_base,
                1e-9);
    ++shares;
  }
  EXPECT_GE(shares, 5);
  EXPECT_TRUE(base->at("win_rate").is_null());
  for (const auto& row : gen)
    EXPECT_LE(row.at("utility").at("value").get<double>(), oracle->at("utility").at("value").get<double>() + 1e-12);
  // Best-of-N charges the whole pool: N times the tokens of one sample, on average.
  const double n = results_->at("config").at("best_of_n").get<double>();
  EXPECT_NEAR(oracle->at("cost").at("tokens_per_response").get<double>() /
                  base->at("cost").at("tokens_per_response").get<double>(),
              n, 0.35 * n);
  // The oracle predictor reaches the expected ceiling of the noisy labels (within its interval).
  const double ceiling = results_->at("config").at("expected_ceiling_accuracy").get<double>();
  const json* acc = find_row(results_->at("accuracy"), "oracle", 16, "seen");
  std::printf("oracle accuracy %.3f [%.3f, %.3f], expected ceiling %.3f\n", acc->at("mean").at("value").get<double>(),
              acc->at("mean").at("lo").get<double>(), acc->at("mean").at("hi").get<double>(), ceiling);
  EXPECT_NEAR(acc->at("mean").at("value").get<double>(), ceiling, 0.06);
  // Knowing the graders but not the user is worth less than knowing the user.
  const json* mean_acc = find_row(results_->at("accuracy"), "oracle_mean", 16, "seen");
  ASSERT_NE(mean_acc, nullptr);
  std::printf("oracle_mean accuracy %.3f\n", mean_acc->at("mean").at("value").get<double>());
  EXPECT_LT(mean_acc->at("mean").at("value").get<double>(), acc->at("mean").at("value").get<double>());
  EXPECT_LT(find_row(gen, "oracle_mean")->at("utility").at("value").get<double>(),
            oracle->at("utility").at("value").get<double>());
}

// Differences from the baseline predictor are paired: bt has none of its own, every other predictor has one whose
// value is the difference of the two expected accuracies; the minority's rows hold exactly the users flagged in it.
TEST_F(Runner, PairedDifferencesAndTheMinority) {
  const json& r = *results_;
  EXPECT_EQ(r.at("config").at("baseline_predictor"), "bt");
  int64_t minority = 0, minority_seen = 0;
  for (const auto& u : r.at("per_user")) {
    minority += u.at("minority").get<bool>();
    minority_seen += u.at("minority").get<bool>() && u.at("group") == "seen";
    if (u.at("contrarian").get<bool>()) EXPECT_TRUE(u.at("minority").get<bool>()) << u.at("user");
  }
  EXPECT_EQ(r.at("config").at("n_minority"), minority);
  EXPECT_GE(minority, 3) << "the least-aligned decile of 24 users is at least 2, plus the contrarians";
  int checked = 0;
  for (const auto& row : r.at("accuracy")) {
    const json* bt = find_row(r.at("accuracy"), "bt", row.at("budget").get<int>(), row.at("group").get<std::string>());
    ASSERT_NE(bt, nullptr);
    if (row.at("method") == "bt") {
      EXPECT_TRUE(row.at("vs_base").is_null());
      continue;
    }
    const double diff = row.at("expected").at("value").get<double>() - bt->at("expected").at("value").get<double>();
    EXPECT_NEAR(row.at("vs_base").at("value").get<double>(), diff, 1e-12) << row.dump();
    // The gain over b=0 is paired the same way: the same method, users and items without the user's pairs.
    const json* b0 =
        find_row(r.at("accuracy"), row.at("method").get<std::string>(), 0, row.at("group").get<std::string>());
    ASSERT_NE(b0, nullptr);
    if (row.at("budget") == 0) {
      EXPECT_TRUE(row.at("vs_b0").is_null());
    } else {
      const double gain = row.at("expected").at("value").get<double>() - b0->at("expected").at("value").get<double>();
      EXPECT_NEAR(row.at("vs_b0").at("value").get<double>(), gain, 1e-12) << row.dump();
      EXPECT_LE(row.at("vs_b0").at("lo").get<double>(), row.at("vs_b0").at("hi").get<double>());
    }
    EXPECT_LE(row.at("vs_base").at("lo").get<double>(), row.at("vs_base").at("hi").get<double>());
    if (row.at("group") == "seen.minority") EXPECT_EQ(row.at("mean").at("n").get<int64_t>(), minority_seen);
    ++checked;
  }
  EXPECT_GT(checked, 20);
  // The oracle's expected accuracy is the expected ceiling on the seen users.
  const json* oracle = find_row(r.at("accuracy"), "oracle", 16, "seen");
  std::printf("oracle expected accuracy %.3f vs the expected ceiling %.3f (all users)\n",
              oracle->at("expected").at("value").get<double>(),
              r.at("config").at("expected_ceiling_accuracy").get<double>());
  EXPECT_NEAR(oracle->at("expected").at("value").get<double>(),
              r.at("config").at("expected_ceiling_accuracy").get<double>(), 0.03);
}

// The learning curves: every curve method has a utility at every budget for both groups, with the paired gain over
// b=0 from the second budget on. For seen users at b=0 no method has seen anything, so each predicts 1/2 everywhere
// and picks the pool's first sample: the curves start at one shared value.
TEST_F(Runner, LearningCurvesStartFromOneColdStart) {
  const json& curves = results_->at("curves");
  for (const char* m :
       {"online", "active", "multi_linear", "pal", "vpl", "online_true", "active_true", "oracle_features"})
    for (int b : {0, 4, 16})
      for (const char* g : {"seen", "unseen"}) {
        const json* row = find_row(curves, m, b, g);
        ASSERT_NE(row, nullptr) << m << b << g;
        EXPECT_EQ(row->at("vs_b0").is_null(), b == 0) << row->dump();
      }
  EXPECT_EQ(find_row(curves, "bt"), nullptr);  // not a curve method
  const double cold = find_row(curves, "online", 0, "seen")->at("utility").at("value").get<double>();
  for (const char* m : {"active", "multi_linear", "online_true", "active_true"})
    EXPECT_DOUBLE_EQ(find_row(curves, m, 0, "seen")->at("utility").at("value").get<double>(), cold) << m;
  for (const auto& row : curves)
    if (row.at("group") == "seen" || row.at("group") == "unseen")
      std::printf("curve %-16s %-7s b=%-3d utility %+.3f\n", row.at("method").get<std::string>().c_str(),
                  row.at("group").get<std::string>().c_str(), row.at("budget").get<int>(),
                  row.at("utility").at("value").get<double>());
}

// The online model learns inside the bench: on the true scores (online_true) 16 of a seen user's pairs lift expected
// accuracy well above the cold start's 1/2, and so do 16 questions chosen by active elicitation (active_true); its
// predictions are calibrated (reliability over every prediction at the largest budget), and the reliability rows
// count every prediction once.
TEST_F(Runner, OnlineModelLearnsAndIsCalibrated) {
  const json& acc = results_->at("accuracy");
  for (const char* m : {"online_true", "active_true"}) {
    const double at0 = find_row(acc, m, 0, "seen")->at("expected").at("value").get<double>();
    const double at16 = find_row(acc, m, 16, "seen")->at("expected").at("value").get<double>();
    std::printf("%s seen expected accuracy b=0 %.3f b=16 %.3f\n", m, at0, at16);
    EXPECT_DOUBLE_EQ(at0, 0.5);
    EXPECT_GT(at16, 0.65);
  }
  const BenchResults r = results_from_json(results_->dump());
  for (const char* m : {"online", "online_true", "active_true", "multi_linear", "random"}) {
    int64_t n = 0;
    for (const auto& c : r.calibration)
      if (c.method == m) {
        n += c.n;
        EXPECT_GE(c.predicted, c.bin / 10.0 - 1e-12) << m;
        EXPECT_LE(c.predicted, (c.bin + 1) / 10.0 + 1e-12) << m;
      }
    EXPECT_EQ(n, 24 * 24) << m;  // every user's test pairs at the largest budget
    std::printf("%-13s ECE %.3f\n", m, r.calibration_error(m));
  }
  EXPECT_LT(r.calibration_error("online_true"), 0.1);
}

// Active elicitation against random queries: the run compares active at 16 events with online at 64, paired, when
// both budgets ran; the same seed asks the same questions and gets the same answers.
TEST(RunnerElicitation, ComparesActiveAt16WithRandomAt64AndRepeats) {
  BenchOptions o = small_options();
  o.methods = {"online", "active", "online_true", "active_true"};
  o.dataset.budgets = {0, 16, 64};
  const json r = to_json(run_bench(o));
  ASSERT_EQ(r.at("comparisons").size(), 4u);
  for (const auto& c : r.at("comparisons")) {
    std::printf("%s %s: %+.3f [%.3f, %.3f]\n", c.at("name").get<std::string>().c_str(),
                c.at("group").get<std::string>().c_str(), c.at("difference").at("value").get<double>(),
                c.at("difference").at("lo").get<double>(), c.at("difference").at("hi").get<double>());
    EXPECT_LE(c.at("difference").at("lo").get<double>(), c.at("difference").at("value").get<double>());
  }
  EXPECT_EQ(r.at("comparisons").at(0).at("name"), "active@16 - online@64");
  const json again = to_json(run_bench(o));
  EXPECT_EQ(again.at("accuracy"), r.at("accuracy"));
  EXPECT_EQ(again.at("comparisons"), r.at("comparisons"));
}

TEST_F(Runner, SameSeedSameFigures) {
  BenchOptions o = small_options();
  o.methods = {"random", "bt"};
  json again = to_json(run_bench(o));
  for (const auto& row : again.at("accuracy")) {
    const json* first = find_row(results_->at("accuracy"), row.at("method"), row.at("budget"), row.at("group"));
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(row.at("mean"), first->at("mean")) << row.dump();
    EXPECT_EQ(row.at("expected"), first->at("expected"));
  }
  const json* bt_again = find_row(again.at("generation"), "bt");
  ASSERT_NE(bt_again, nullptr);  // a generating method brings sample and oracle along
  EXPECT_EQ(bt_again->at("utility"), find_row(results_->at("generation"), "bt")->at("utility"));
  EXPECT_EQ(again.at("methods").size(), 4u);
}

// maxmin predicts with the user's group and generates by it; maxmin_egal shares its fit, predicts nothing and serves
// every user the candidate with the best minimum over the groups.
TEST(RunnerMaxmin, PredictsByGroupAndItsEgalitarianTwinGenerates) {
  BenchOptions o = small_options();
  o.methods = {"maxmin", "maxmin_egal"};
  const json r = to_json(run_bench(o));
  const json* seen0 = find_row(r.at("accuracy"), "maxmin", 0, "seen");
  const json* seen16 = find_row(r.at("accuracy"), "maxmin", 16, "seen");
  ASSERT_TRUE(seen0 && seen16);
  EXPECT_EQ(find_row(r.at("accuracy"), "maxmin_egal", 16, "seen"), nullptr);
  std::printf("maxmin accuracy @16 (seen) %.3f\n", seen16->at("mean").at("value").get<double>());
  for (const char* m : {"maxmin", "maxmin_egal"}) {
    const json* row = find_row(r.at("generation"), m);
    ASSERT_NE(row, nullptr) << m;
    EXPECT_TRUE(std::isfinite(row->at("utility").at("value").get<double>())) << m;
  }
}

// ric trains its Rewards-in-Context adapter inside the run (in inference mode) and generates for every user.
TEST(RunnerRic, TrainsItsAdapterAndGenerates) {
  BenchOptions o = small_options();
  o.methods = {"ric"};
  const json r = to_json(run_bench(o));
  const json* row = find_row(r.at("generation"), "ric");
  ASSERT_NE(row, nullptr);
  EXPECT_TRUE(std::isfinite(row->at("utility").at("value").get<double>()));
  EXPECT_EQ(find_row(r.at("accuracy"), "ric", 16, "seen"), nullptr);
  std::printf("ric utility %.3f (tokens/response %.1f)\n", row->at("utility").at("value").get<double>(),
              row->at("cost").at("tokens_per_response").get<double>());
}

// modpo trains one MODPO expert per dimension inside the run (the others' head scores as margins), shared under its
// own key (not soups' DPO experts), and serves each user their soup.
TEST(RunnerModpo, TrainsItsExpertsAndGenerates) {
  BenchOptions o = small_options();
  o.methods = {"modpo"};
  const json r = to_json(run_bench(o));
  const json* row = find_row(r.at("generation"), "modpo");
  ASSERT_NE(row, nullptr);
  EXPECT_TRUE(std::isfinite(row->at("utility").at("value").get<double>()));
  std::vector<std::string> made;
  for (const auto& m : r.at("methods"))
    if (m.at("name") == "modpo")
      for (const auto& key : m.at("shared_made")) made.push_back(key.get<std::string>());
  EXPECT_NE(std::find(made.begin(), made.end(), "policy.modpo_experts"), made.end());
  EXPECT_EQ(std::find(made.begin(), made.end(), "policy.dpo_experts"), made.end());
  std::printf("modpo utility %.3f (tokens/response %.1f)\n", row->at("utility").at("value").get<double>(),
              row->at("cost").at("tokens_per_response").get<double>());
}

// The opt-in GenARM method trains its per-dimension adapters inside the bench (which runs in inference mode) and
// reports like the others.
TEST(RunnerOptIn, ArmLinearTrainsAdaptersAndReports) {
  BenchOptions o = small_options();
  o.methods = {"arm_linear"};
  const json r = to_json(run_bench(o));
  const json* seen0 = find_row(r.at("accuracy"), "arm_linear", 0, "seen");
  const json* seen16 = find_row(r.at("accuracy"), "arm_linear", 16, "seen");
  ASSERT_TRUE(seen0 && seen16);
  EXPECT_DOUBLE_EQ(seen0->at("mean").at("value").get<double>(), 0.5);
  double fit_seconds = -1;
  for (const auto& m : r.at("methods"))
    if (m.at("name") == "arm_linear") fit_seconds = m.at("fit_seconds").get<double>();
  std::printf("arm_linear seen b=16: %.3f; fit %.1f s\n", seen16->at("mean").at("value").get<double>(), fit_seconds);
  EXPECT_GT(fit_seconds, 0.0);
  EXPECT_NE(find_row(r.at("generation"), "arm_linear"), nullptr);
}

// --methods decoding runs every decoding strategy (plus the base and the oracle), each with its cost. args predicts
// with the reward it decodes by (so that reward is validated), with a head per dimension in the per-dimension table;
// args_greedy is paired with greedy decoding, its own base.
TEST(RunnerOptIn, DecodingGroupRunsEveryStrategy) {
  const auto names = expand_method_names({"decoding", "bt"});
  EXPECT_EQ(names,
            (std::vector<std::string>{"steer", "steer_bipo", "prompt", "contrast", "greedy", "args", "args_greedy",
                                      "cd_block", "cards", "value", "correct", "fusion", "proxy", "bt"}));
  BenchOptions o = small_options();
  o.methods = {"decoding"};
  o.dataset.population.n_users = 8;
  const json r = to_json(run_bench(o));
  for (const auto& m : names)
    if (m != "args") EXPECT_EQ(find_row(r.at("accuracy"), m), nullptr) << m << " does not predict";
  ASSERT_NE(find_row(r.at("accuracy"), "args", 16, "seen"), nullptr);
  int args_heads = 0;
  for (const auto& d : r.at("dimensions")) args_heads += d.at("method") == "args";
  EXPECT_EQ(args_heads, static_cast<int>(r.at("config").at("dimensions").size()));
  const json* greedy_args = find_row(r.at("generation"), "args_greedy");
  ASSERT_NE(greedy_args, nullptr);
  EXPECT_EQ(greedy_args->at("own_base"), "greedy");
  EXPECT_TRUE(std::isfinite(greedy_args->at("vs_own_base").at("value").get<double>()));
  const json& gen = r.at("generation");
  const double base = find_row(gen, "sample")->at("utility").at("value").get<double>();
  for (const auto& m : names) {
    if (m == "bt") continue;
    const json* row = find_row(gen, m);
    ASSERT_NE(row, nullptr) << m;
    const double u = row->at("utility").at("value").get<double>();
    EXPECT_TRUE(std::isfinite(u)) << m;
    EXPECT_GT(row->at("cost").at("tokens_per_response").get<double>(), 0.0) << m;
    std::printf("%-9s utility %.3f (sample %.3f) win rate %.3f, %.1f ms/response\n", m.c_str(), u, base,
                row->at("win_rate").at("value").get<double>(),
                row->at("cost").at("wall_ms_per_response").get<double>());
  }
}

// --methods policy trains the per-dimension DPO experts once and serves them merged (soups) and fused (mod), and the
// methods that train on the users' own pairs: P-DPO and per-user DPO / SFT adapters.
TEST(RunnerOptIn, PolicyGroupMergesAndFusesTheSameExperts) {
  BenchOptions o = small_options();
  o.methods = {"policy"};
  o.dataset.population.n_users = 8;
  const json r = to_json(run_bench(o));
  double fit_soups = -1, fit_mod = -1;
  int experts_made = 0;
  for (const auto& m : r.at("methods")) {
    if (m.at("name") == "soups") fit_soups = m.at("fit_seconds").get<double>();
    if (m.at("name") == "mod") fit_mod = m.at("fit_seconds").get<double>();
    for (const auto& key : m.at("shared_made")) {
      std::printf("%-10s made %s\n", m.at("name").get<std::string>().c_str(), key.get<std::string>().c_str());
      if (key == "policy.dpo_experts") {
        ++experts_made;
        EXPECT_EQ(m.at("name"), "soups") << "the first policy method trains the experts";
      }
    }
  }
  for (const char* m : {"soups", "mod", "modpo", "pdpo", "dpo_user", "ipo_user", "simpo_user", "sft_user"}) {
    const json* row = find_row(r.at("generation"), m);
    ASSERT_NE(row, nullptr) << m;
    EXPECT_TRUE(std::isfinite(row->at("utility").at("value").get<double>())) << m;
    std::printf("%-10s utility %.3f win rate %.3f\n", m, row->at("utility").at("value").get<double>(),
                row->at("win_rate").at("value").get<double>());
  }
  std::printf("fit: soups %.1f s (trains the experts), mod %.1f s (reuses them)\n", fit_soups, fit_mod);
  EXPECT_GT(fit_soups, 0.0);
  EXPECT_EQ(experts_made, 1) << "the experts are trained once per run";
}

TEST(RunnerErrors, UnknownMethodAndBadOptionsFailFirst) {
  BenchOptions o = small_options();
  o.methods = {"nonesuch"};
  try {
    run_bench(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("known methods: random"), std::string::npos) << e.what();
  }
  o = small_options();
  o.n_prompts = 6;  // all training, none to test on
  EXPECT_THROW(run_bench(o), Error);
  o = small_options();
  o.candidates_per_prompt = 1;
  EXPECT_THROW(run_bench(o), Error);
}

}  // namespace
