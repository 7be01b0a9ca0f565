// The bench report as Markdown for the terminal (see report.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "palign/base/error.h"
#include "palign/bench/report.h"
#include "report_internal.h"

namespace palign::bench {

namespace report {

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// A pipe table with columns padded to equal width, so that it also reads well as plain text on a terminal.
void md_table(std::ostringstream& out, const std::vector<std::string>& header,
              const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 3);
  auto measure = [&](const std::vector<std::string>& cells) {
    for (size_t col = 0; col < cells.size() && col < width.size(); ++col)
      width[col] = std::max(width[col], display_width(md_cell(cells[col])));
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  auto write = [&](const std::vector<std::string>& cells) {
    out << '|';
    for (size_t col = 0; col < width.size(); ++col) {
      const std::string cell = col < cells.size() ? md_cell(cells[col]) : "";
      const std::string pad(width[col] - display_width(cell), ' ');
      out << ' ' << (col == 0 ? cell + pad : pad + cell) << " |";  // numbers right-aligned
    }
    out << '\n';
  };
  write(header);
  out << '|';
  for (size_t col = 0; col < width.size(); ++col)
    out << ' ' << (col == 0 ? std::string(width[col], '-') : std::string(width[col] - 1, '-') + ":") << " |";
  out << '\n';
  for (const auto& row : rows) write(row);
  out << '\n';
}

// Accuracy per method × budget for one group, then at the largest budget the paired difference from the baseline
// predictor and the group's minority; older documents (no minority rows) show their worst decile instead.
void md_accuracy_table(std::ostringstream& out, const BenchResults& r, std::string_view group) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  const std::string max_b = std::to_string(r.max_budget());
  const std::string minority = std::string(group) + ".minority";
  const bool has_minority = r.has_group(minority);
  std::vector<std::string> header{"method"};
  for (int64_t b : budgets) header.push_back("b=" + std::to_string(b));
  if (has_minority) {
    header.push_back("vs " + r.baseline_predictor() + ", b=" + max_b + " (exp.)");
    header.push_back("minority, b=" + max_b + " (exp.)");
    header.push_back("minority vs " + r.baseline_predictor());
  } else {
    header.push_back("worst decile, b=" + max_b);
  }
  const int64_t gain_b = gain_budget(r, group);
  if (gain_b > 0) header.push_back("b=" + std::to_string(gain_b) + " vs b=0 (exp.)");
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : r.predicting()) {
    std::vector<std::string> row{method_label(r, name)};
    bool any = false;
    for (int64_t b : budgets) {
      const AccuracyRow* a = r.find_accuracy(name, b, group);
      any |= a != nullptr;
      row.push_back(a ? figure_text(a->mean, kAccuracyDigits) : kDash);
    }
    const AccuracyRow* last = r.find_accuracy(name, r.max_budget(), group);
    if (has_minority) {
      const AccuracyRow* m = r.find_accuracy(name, r.max_budget(), minority);
      row.push_back(last ? difference_text(last->vs_base, kAccuracyDigits) : kDash);
      row.push_back(m ? figure_text(m->expected, kAccuracyDigits) : kDash);
      row.push_back(m ? difference_text(m->vs_base, kAccuracyDigits) : kDash);
    } else {
      row.push_back(last ? figure_text(last->worst_decile, kAccuracyDigits) : kDash);
    }
    if (gain_b > 0) {
      const AccuracyRow* a = r.find_accuracy(name, gain_b, group);
      row.push_back(a ? difference_text(a->vs_b0, kAccuracyDigits) : kDash);
    }
    if (any) rows.push_back(std::move(row));
  }
  md_table(out, header, rows);
}

// The learning curve of generation for one group: each curve method's best-of-N utility at every budget, and its
// paired gains over b=0 at the largest budget.
void md_curve_table(std::ostringstream& out, const BenchResults& r, std::string_view group) {
  const std::vector<int64_t> budgets = r.curve_budgets(group);
  if (budgets.empty()) return;
  std::vector<std::string> header{"method"};
  for (int64_t b : budgets) header.push_back("b=" + std::to_string(b));
  header.push_back("b=" + std::to_string(budgets.back()) + " vs b=0");
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : r.curved()) {
    std::vector<std::string> row{method_label(r, name)};
    for (int64_t b : budgets) {
      const CurveRow* c = r.find_curve(name, b, group);
      row.push_back(c ? fixed(c->utility.value, 3) : kDash);
    }
    const CurveRow* last = r.find_curve(name, budgets.back(), group);
    row.push_back(last ? difference_text(last->vs_b0, kUtilityDigits) : kDash);
    rows.push_back(std::move(row));
  }
  md_table(out, header, rows);
}

// The reliability tables: per method, the observed share of first-preferred pairs in each bin of predicted
// probability (with the bin's count), and the expected calibration error.
void md_calibration_table(std::ostringstream& out, const BenchResults& r) {
  std::vector<std::string> header{"method", "ECE"};
  for (int bin = 0; bin < 10; ++bin) header.push_back(fixed(bin / 10.0, 1) + "–" + fixed((bin + 1) / 10.0, 1));
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : r.methods) {
    const double ece = r.calibration_error(m.name);
    if (!std::isfinite(ece)) continue;
    std::vector<std::string> row{method_label(r, m.name), fixed(ece, 3)};
    for (int64_t bin = 0; bin < 10; ++bin) {
      std::string cell;
      for (const auto& c : r.calibration)
        if (c.method == m.name && c.bin == bin && c.n > 0)
          cell = fixed(c.observed, 2) + " (" + std::to_string(c.n) + ")";
      row.push_back(cell);
    }
    rows.push_back(std::move(row));
  }
  md_table(out, header, rows);
}

std::string markdown(const BenchResults& r) {
  std::ostringstream out;
  const std::string max_b = "b=" + std::to_string(r.max_budget());
  const std::string mode = text(r.config, "mode");
  out << "# palign bench: " << (mode.empty() ? "" : md_cell(mode) + " mode, ") << "seed "
      << config_value(r.config.value("seed", json())) << "\n\n";
  out << config_value(r.config.value("n_users", json())) << " users (" << config_value(r.config.value("n_seen", json()))
      << " seen, " << config_value(r.config.value("n_unseen", json())) << " unseen); budgets "
      << join_budgets(r.budgets()) << " pairs per user; model " << config_value(r.config.value("model", json()))
      << "; wall time " << duration(r.wall_seconds) << ".\n\n";
  for (const auto& line : headline(r)) out << "- " << line << "\n";

  out << "\n## Preference accuracy\n\n";
  if (r.accuracy.empty()) {
    out << "No predicting method ran.\n\n";
  } else {
    out << "Held-out pairwise accuracy on noisy labels: mean over users [95% interval resampling users and test "
           "prompts]. \"exp.\": expected accuracy, each prediction credited with the true probability of its order; "
           "\"vs "
        << r.baseline_predictor()
        << "\": the paired difference in expected accuracy from it on the same users and items (* the interval "
           "excludes 0). Minority: "
        << text(r.config, "minority")
        << ".\nExpected ceiling accuracy (true label probabilities on these noisy labels): " << fixed(r.ceiling(), 3)
        << "; chance: 0.500.\n\n";
    if (r.has_group("seen")) {
      out << "### Seen users (model fitted on b pairs per user)\n\n";
      md_accuracy_table(out, r, "seen");
    }
    if (r.has_group("unseen")) {
      out << "### Unseen users (model fitted on the seen users at " << max_b << "; b = the new user's own pairs)\n\n";
      md_accuracy_table(out, r, "unseen");
    }
  }

  if (!r.curves.empty()) {
    out << "## Learning curves\n\nAccuracy per budget is in the tables above. Generation after b events: the hidden "
           "utility of the pooled sample each method predicts the user prefers to the pool's first (best-of-N by its "
           "predictions), mean over users x test prompts; the last column is the paired gain over b=0 (the cold "
           "start: the population prior alone), * where its interval excludes 0.\n\n";
    for (const char* group : {"seen", "unseen"})
      if (std::any_of(r.curves.begin(), r.curves.end(), [&](const CurveRow& c) { return c.group == group; })) {
        out << "### " << (std::string_view(group) == "seen" ? "Seen" : "Unseen") << " users\n\n";
        md_curve_table(out, r, group);
      }
  }
  if (!r.comparisons.empty()) {
    out << "Paired comparisons (expected accuracy, the same users and items; * the interval excludes 0):\n\n";
    for (const auto& c : r.comparisons)
      out << "- " << md_cell(c.name) << ", " << md_cell(c.group)
          << " users: " << difference_text(c.difference, kAccuracyDigits) << " (" << md_cell(c.description) << ")\n";
    out << "\n";
  }
  if (!r.calibration.empty()) {
    out << "## Calibration\n\nReliability at " << max_b
        << " (seen and unseen users): the predictions binned by the predicted probability that the first response "
           "shown is preferred; each cell the share of the bin's pairs whose first was chosen (count). ECE: the "
           "count-weighted mean |predicted − observed|.\n\n";
    md_calibration_table(out, r);
  }

  out << "## Generation\n\n";
  if (r.generation.empty()) {
    out << "No generating method ran.\n\n";
  } else {
    out << "Hidden utility per response at " << max_b
        << " (mean over users x test prompts [95% interval resampling both]). The difference, win rate and "
           "oracle-gain share are against "
        << r.base_method()
        << " (the base) on the same users and prompts, paired (* the interval excludes 0); share = (method - base) / "
           "(oracle - base).\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& g : r.generation)
      rows.push_back({method_label(r, g.method, /*mark_base=*/true), figure_text(g.utility, kUtilityDigits),
                      difference_text(g.vs_base, kUtilityDigits), figure_text(g.win_rate, kAccuracyDigits),
                      figure_text(g.oracle_gain_share, kShareDigits), fixed(g.wall_ms, 1), fixed(g.tokens, 1),
                      fixed(g.forward_passes, 1)});
    md_table(out,
             {"method", "utility", "vs " + r.base_method(), "win rate vs " + r.base_method(), "oracle-gain share",
              "ms/response", "tokens/response", "forward passes/response"},
             rows);
    std::vector<std::vector<std::string>> own;
    for (const auto& g : r.generation)
      if (!g.own_base.empty())
        own.push_back({method_label(r, g.method), g.own_base, difference_text(g.vs_own_base, kUtilityDigits)});
    if (!own.empty()) {
      out << "Paired against their own base (decoding at the same temperature):\n\n";
      md_table(out, {"method", "own base", "utility vs own base"}, own);
    }
  }

  if (!r.dimensions.empty()) {
    out << "## Per-dimension heads\n\nEach learned head on the pairs of candidates at the test prompts, labelled by "
           "its grader [95% Wilson interval], its correlation with the grader's z-score on those candidates, and the "
           "pairs it was trained on (the largest; smaller sizes, where measured, are the same heads fitted on the "
           "first pairs: their learning curve).\n\n";
    // One row per method and dimension: the largest fit in full, the smaller ones as accuracy columns.
    std::set<int64_t> smaller;
    std::map<std::pair<std::string, std::string>, int64_t> largest;
    for (const auto& d : r.dimensions) {
      auto& n = largest[{d.method, d.dimension}];
      n = std::max(n, d.train_pairs);
    }
    for (const auto& d : r.dimensions)
      if (d.train_pairs < largest.at({d.method, d.dimension})) smaller.insert(d.train_pairs);
    std::vector<std::string> header = {"method", "dimension"};
    for (int64_t n : smaller) header.push_back("accuracy @ " + std::to_string(n));
    for (const char* h : {"train pairs", "held-out accuracy", "correlation with grader"}) header.push_back(h);
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : r.dimensions) {
      if (d.train_pairs < largest.at({d.method, d.dimension})) continue;
      std::vector<std::string> row = {method_label(r, d.method), d.dimension};
      for (int64_t n : smaller) {
        std::string cell;
        for (const auto& e : r.dimensions)
          if (e.method == d.method && e.dimension == d.dimension && e.train_pairs == n)
            cell = fixed(e.accuracy.value, 3);
        row.push_back(cell);
      }
      for (auto& cell : std::vector<std::string>{std::to_string(d.train_pairs),
                                                 figure_text(d.accuracy, kAccuracyDigits), fixed(d.correlation, 2)})
        row.push_back(std::move(cell));
      rows.push_back(std::move(row));
    }
    md_table(out, header, rows);
  }

  if (!r.methods.empty()) {
    out << "## Methods\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : r.methods)
      rows.push_back({method_label(r, m.name), m.predicts ? "yes" : "no", m.generates ? "yes" : "no",
                      fixed(m.fit_seconds, 2), significant(m.predict_ms_per_pair)});
    md_table(out, {"method", "predicts", "generates", "fit s", "predict ms/pair"}, rows);
  }
  return out.str();
}

}  // namespace report

std::string render_markdown(const BenchResults& results) { return report::markdown(results); }
std::string render_markdown(const std::string& results_json) {
  return report::markdown(results_from_json(results_json));
}

}  // namespace palign::bench
