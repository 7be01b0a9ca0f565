// The results of a bench run, typed: what run_bench returns, what the reports render, and its one JSON form
// (results.json: {"format": "palign.bench.results", "version": 1, "config", "wall_seconds", "methods", "accuracy",
// "generation", "dimensions", "per_user", "curves", "calibration", "comparisons"}). Reading is lenient so that older or
// partial documents still render: an absent, null or non-numeric figure reads as NaN (printed "—"), rows without a
// method name are skipped.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace palign::bench {

struct Estimate;  // metrics.h

// A statistic with its 95% interval; absent (written as null) when n is 0 and the value NaN.
struct Figure {
  double value = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  int64_t n = 0;
  bool present() const { return n > 0 || std::isfinite(value); }
};
Figure figure_of(const Estimate& e);

struct MethodRow {
  std::string name, description;
  bool oracle = false, predicts = false, generates = false;
  double fit_seconds = std::numeric_limits<double>::quiet_NaN();
  double predict_ms_per_pair = std::numeric_limits<double>::quiet_NaN();  // NaN: the method made no predictions
  std::vector<std::string> shared_made;  // what its fit made for the run's methods to share
};

// Accuracy figures resample users and test prompts (a two-way bootstrap); vs_base is paired: the same users and items
// for both methods.
struct AccuracyRow {
  // "seen" | "unseen", and "seen.minority" | "unseen.minority": the pre-declared minority (contrarians and the
  // least-aligned decile of users) within each.
  std::string method, group;
  int64_t budget = 0;
  Figure mean;          // accuracy on the held-out (noisy) labels
  Figure expected;      // expected accuracy: each prediction credited with the true probability of its order
  Figure vs_base;       // expected accuracy minus the baseline predictor's (config "baseline_predictor"); paired
  Figure vs_b0;         // expected accuracy minus the same method's at b=0 (no pairs of the user's), paired; b > 0
  Figure worst_decile;  // older documents only: the mean of the lowest 10% of users
};

struct GenerationRow {
  std::string method;
  Figure utility, win_rate;  // win_rate: absent for the base method
  Figure vs_base;            // utility minus the base method's, paired (absent for the base)
  Figure oracle_gain_share;  // (method − base) / (oracle − base), its interval from the same resamples
  std::string own_base;      // MethodInfo::own_base when it ran, with the paired difference from it
  Figure vs_own_base;
  double wall_ms = std::numeric_limits<double>::quiet_NaN();  // per response
  double tokens = std::numeric_limits<double>::quiet_NaN();
  double forward_passes = std::numeric_limits<double>::quiet_NaN();
};

// One learned per-dimension head (multi_linear's) against its grader: accuracy on the test prompts' candidate pairs
// labelled by the grader (Wilson interval), correlation with the grader's z-score, and its training pairs.
struct DimensionRow {
  std::string method, dimension;
  int64_t train_pairs = 0;
  Figure accuracy;
  double correlation = std::numeric_limits<double>::quiet_NaN();
};

// The learning curve of generation, for methods with MethodInfo::curve: at each budget and group, the hidden utility
// of the pooled sample the method predicts the user prefers (best-of-N by its predictions), over users × test prompts,
// and its paired difference from the same method at b=0 (the cold start).
struct CurveRow {
  std::string method, group;
  int64_t budget = 0;
  Figure utility, vs_b0;
};

// A reliability table: a method's predictions at the largest budget (seen and unseen users) binned by the predicted
// probability that the first response shown is preferred (ten bins of width 0.1), against how often it was.
struct CalibrationRow {
  std::string method;
  int64_t bin = 0;  // [bin / 10, (bin + 1) / 10); the last bin includes 1
  int64_t n = 0;
  double predicted = std::numeric_limits<double>::quiet_NaN();  // mean predicted probability in the bin
  double observed = std::numeric_limits<double>::quiet_NaN();   // share of the bin's pairs whose first was chosen
};

// A named paired comparison the run makes beyond the tables' columns, e.g. active elicitation at 16 events against
// random queries at 64 (expected accuracy, the same users and items).
struct ComparisonRow {
  std::string name, group, description;
  Figure difference;
};

struct UserRow {
  std::string user, group;
  double alignment = std::numeric_limits<double>::quiet_NaN();  // cosine with the population's mean preference
  bool contrarian = false;
  bool minority = false;                   // in the pre-declared minority group
  std::map<std::string, double> accuracy;  // method -> accuracy at the largest budget
  std::map<std::string, double> utility;   // method -> mean utility of its generations
};

struct BenchResults {
  nlohmann::json config = nlohmann::json::object();  // the run's settings (mode, seed, budgets, sizes, model, ...)
  double wall_seconds = std::numeric_limits<double>::quiet_NaN();
  std::vector<MethodRow> methods;  // registry order (reading adds methods named only by accuracy or generation rows)
  std::vector<AccuracyRow> accuracy;
  std::vector<GenerationRow> generation;
  std::vector<DimensionRow> dimensions;
  std::vector<UserRow> per_user;
  std::vector<CurveRow> curves;
  std::vector<CalibrationRow> calibration;
  std::vector<ComparisonRow> comparisons;

  // ---- Views the reports use.
  const MethodRow* method(const std::string& name) const;
  bool is_oracle(const std::string& name) const;
  const AccuracyRow* find_accuracy(const std::string& name, int64_t budget, std::string_view group) const;
  bool has_group(std::string_view group) const;
  // Methods with at least one accuracy row, in method order.
  std::vector<std::string> predicting() const;
  // The config's budgets and any an accuracy row names, ascending and distinct.
  std::vector<int64_t> budgets() const;
  // Budgets that some accuracy row names, ascending.
  std::vector<int64_t> measured_budgets() const;
  int64_t max_budget() const;
  std::string base_method() const;         // the config's, "sample" by default
  std::string baseline_predictor() const;  // the config's, "bt" by default
  double ceiling() const;                  // the config's expected_ceiling_accuracy (NaN when absent)
  // The expected calibration error of a method's reliability table: Σ n_bin |predicted − observed| / Σ n_bin; NaN
  // without rows.
  double calibration_error(const std::string& name) const;
  const CurveRow* find_curve(const std::string& name, int64_t budget, std::string_view group) const;
  // The budgets of curve rows (of group; empty: any group), ascending and distinct.
  std::vector<int64_t> curve_budgets(std::string_view group = "") const;
  // Methods with curve rows, in method order.
  std::vector<std::string> curved() const;
  // The non-oracle method with the highest mean accuracy of group at budget; "" when none has one.
  std::string best_predictor(int64_t budget, std::string_view group) const;
};

// The JSON document (NaN figures as null).
nlohmann::json to_json(const BenchResults& results);
// Reads a document. Throws palign::Error(kInvalidArgument) when the text is not JSON or not a "palign.bench.results"
// document or a section is not an array, kUnsupported for a version other than 1.
BenchResults results_from_json(const std::string& text);

}  // namespace palign::bench
