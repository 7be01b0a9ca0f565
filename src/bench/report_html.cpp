// The bench report as one standalone HTML page with inline SVG plots and CSS (see report.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "palign/base/error.h"
#include "palign/bench/report.h"
#include "report_internal.h"

namespace palign::bench {

namespace report {

constexpr const char* kCss = R"css(
:root { --ink: #1d2330; --muted: #5b6474; --line: #dde2ea; --head: #f0f3f8; --best: #e8f4ea; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f5f8; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 36px 48px; background: #fff; min-height: 100vh; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p { margin: 6px 0; }
.meta, .note, figcaption { color: var(--muted); }
.note, figcaption { font-size: 13px; }
ul.headline { margin: 12px 0; padding-left: 20px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13.5px; display: block; max-width: 100%;
  overflow-x: auto; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { white-space: normal; }
table.stack .ci { display: block; }
td.best { background: var(--best); font-weight: 600; }
.ci { color: var(--muted); font-size: 12px; font-weight: 400; }
.tag { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; font-size: 11px;
  background: #fdebd9; color: #8a4b14; }
.tag.base { background: #e3ecf8; color: #27466e; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 16px 0 8px; }
figure svg { display: block; width: 100%; height: auto; font-family: inherit; }
details { margin: 8px 0 16px; }
summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
)css";

std::string html_figure(const Figure& f, Digits d) {
  if (!std::isfinite(f.value)) return kDash;
  std::string s = fixed(f.value, d.value);
  if (std::isfinite(f.lo) && std::isfinite(f.hi))
    s += " <span class=\"ci\">[" + fixed(f.lo, d.interval) + ", " + fixed(f.hi, d.interval) + "]</span>";
  return s;
}

std::string html_method(const BenchResults& r, const std::string& name, bool mark_base = false) {
  std::string s = "<span class=\"swatch\" style=\"background:" + colour_of(r, name) + "\"></span>" + escape_html(name);
  if (r.is_oracle(name)) s += "<span class=\"tag\">oracle</span>";
  if (mark_base && name == r.base_method()) s += "<span class=\"tag base\">base</span>";
  return s;
}

// One figure (field: the mean, the expected accuracy, an older document's worst decile) per method × budget for one
// group; with `summary`, the difference from the baseline and the minority's figures at the largest budget follow.
// The best non-oracle mean of each column is highlighted.
void html_accuracy_table(std::ostringstream& out, const BenchResults& r, std::string_view group,
                         Figure AccuracyRow::*field, bool summary) {
  const bool worst = !summary;
  const std::vector<int64_t> budgets = r.measured_budgets();
  // More than 4 budgets: intervals go under their values, so that the table fits the page.
  out << (budgets.size() > 4 ? "<table class=\"stack\">" : "<table>") << "\n<tr><th>method</th>";
  for (int64_t b : budgets) out << "<th class=\"num\">b=" << b << "</th>";
  const std::string minority = std::string(group) + ".minority";
  const bool has_minority = r.has_group(minority);
  if (!worst && has_minority)
    out << "<th class=\"num\">vs " << escape_html(r.baseline_predictor()) << ", b=" << r.max_budget()
        << " (exp.)</th><th class=\"num\">minority, b=" << r.max_budget()
        << " (exp.)</th><th class=\"num\">minority vs " << escape_html(r.baseline_predictor()) << "</th>";
  else if (!worst)
    out << "<th class=\"num\">worst decile, b=" << r.max_budget() << "</th>";
  const int64_t gain_b = worst ? 0 : gain_budget(r, group);
  if (gain_b > 0) out << "<th class=\"num\">b=" << gain_b << " vs b=0 (exp.)</th>";
  out << "</tr>\n";
  std::vector<std::string> best;
  for (int64_t b : budgets) best.push_back(field == &AccuracyRow::mean ? r.best_predictor(b, group) : "");
  for (const auto& name : r.predicting()) {
    std::ostringstream row;
    bool any = false;
    row << "<tr><td>" << html_method(r, name) << "</td>";
    for (size_t bi = 0; bi < budgets.size(); ++bi) {
      const AccuracyRow* a = r.find_accuracy(name, budgets[bi], group);
      any |= a != nullptr;
      row << "<td class=\"num" << (best[bi] == name ? " best" : "") << "\"";
      if (a) row << " title=\"n = " << (a->*field).n << "\"";
      row << '>' << (a ? html_figure(a->*field, kAccuracyDigits) : kDash) << "</td>";
    }
    const AccuracyRow* last = r.find_accuracy(name, r.max_budget(), group);
    if (!worst && has_minority) {
      const AccuracyRow* m = r.find_accuracy(name, r.max_budget(), minority);
      row << "<td class=\"num\">" << escape_html(last ? difference_text(last->vs_base, kAccuracyDigits) : kDash)
          << "</td><td class=\"num\">" << (m ? html_figure(m->expected, kAccuracyDigits) : kDash)
          << "</td><td class=\"num\">" << escape_html(m ? difference_text(m->vs_base, kAccuracyDigits) : kDash)
          << "</td>";
    } else if (!worst) {
      row << "<td class=\"num\">" << (last ? html_figure(last->worst_decile, kAccuracyDigits) : kDash) << "</td>";
    }
    if (gain_b > 0) {
      const AccuracyRow* a = r.find_accuracy(name, gain_b, group);
      row << "<td class=\"num\">" << escape_html(a ? difference_text(a->vs_b0, kAccuracyDigits) : kDash) << "</td>";
    }
    row << "</tr>\n";
    if (any) out << row.str();
  }
  out << "</table>\n";
}

// The learning curve of generation for one group (CurveRow): utility per budget, the paired gain over b=0 last.
void html_curve_table(std::ostringstream& out, const BenchResults& r, std::string_view group) {
  const std::vector<int64_t> budgets = r.curve_budgets(group);
  if (budgets.empty()) return;
  out << "<table class=\"stack\">\n<tr><th>method</th>";
  for (int64_t b : budgets) out << "<th class=\"num\">b=" << b << "</th>";
  out << "<th class=\"num\">b=" << budgets.back() << " vs b=0</th></tr>\n";
  for (const auto& name : r.curved()) {
    out << "<tr><td>" << html_method(r, name) << "</td>";
    for (int64_t b : budgets) {
      const CurveRow* c = r.find_curve(name, b, group);
      out << "<td class=\"num\">" << (c ? html_figure(c->utility, kUtilityDigits) : kDash) << "</td>";
    }
    const CurveRow* last = r.find_curve(name, budgets.back(), group);
    out << "<td class=\"num\">" << escape_html(last ? difference_text(last->vs_b0, kUtilityDigits) : kDash)
        << "</td></tr>\n";
  }
  out << "</table>\n";
}

// The reliability table: per method, the expected calibration error and each bin's observed share (count).
void html_calibration_table(std::ostringstream& out, const BenchResults& r) {
  out << "<table class=\"stack\">\n<tr><th>method</th><th class=\"num\">ECE</th>";
  for (int bin = 0; bin < 10; ++bin)
    out << "<th class=\"num\">" << fixed(bin / 10.0, 1) << "&ndash;" << fixed((bin + 1) / 10.0, 1) << "</th>";
  out << "</tr>\n";
  for (const auto& m : r.methods) {
    const double ece = r.calibration_error(m.name);
    if (!std::isfinite(ece)) continue;
    out << "<tr><td>" << html_method(r, m.name) << "</td><td class=\"num\">" << fixed(ece, 3) << "</td>";
    for (int64_t bin = 0; bin < 10; ++bin) {
      out << "<td class=\"num\">";
      for (const auto& c : r.calibration)
        if (c.method == m.name && c.bin == bin && c.n > 0)
          out << "<span title=\"mean predicted " << fixed(c.predicted, 3) << "\">" << fixed(c.observed, 2)
              << "</span> <span class=\"ci\">(" << c.n << ")</span>";
      out << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n";
}

void html_generation_table(std::ostringstream& out, const BenchResults& r) {
  out << "<table>\n<tr><th>method</th><th class=\"num\">utility</th><th class=\"num\">vs "
      << escape_html(r.base_method()) << "</th><th class=\"num\">win rate vs " << escape_html(r.base_method())
      << "</th><th class=\"num\">oracle-gain share</th><th class=\"num\">ms/response</th>"
         "<th class=\"num\">tokens/response</th><th class=\"num\">forward passes/response</th></tr>\n";
  for (const auto& g : r.generation)
    out << "<tr><td>" << html_method(r, g.method, /*mark_base=*/true) << "</td><td class=\"num\">"
        << html_figure(g.utility, kUtilityDigits) << "</td><td class=\"num\">"
        << escape_html(difference_text(g.vs_base, kUtilityDigits)) << "</td><td class=\"num\">"
        << html_figure(g.win_rate, kAccuracyDigits) << "</td><td class=\"num\">"
        << html_figure(g.oracle_gain_share, kShareDigits) << "</td><td class=\"num\">" << fixed(g.wall_ms, 1)
        << "</td><td class=\"num\">" << fixed(g.tokens, 1) << "</td><td class=\"num\">" << fixed(g.forward_passes, 1)
        << "</td></tr>\n";
  out << "</table>\n";
}

void html_methods_table(std::ostringstream& out, const BenchResults& r) {
  out << "<table>\n<tr><th>method</th><th>description</th><th>predicts</th><th>generates</th>"
         "<th class=\"num\">fit s</th><th class=\"num\">predict ms/pair</th></tr>\n";
  for (const auto& m : r.methods)
    out << "<tr><td>" << html_method(r, m.name) << "</td><td>" << escape_html(m.description) << "</td><td>"
        << (m.predicts ? "yes" : "no") << "</td><td>" << (m.generates ? "yes" : "no") << "</td><td class=\"num\">"
        << fixed(m.fit_seconds, 2) << "</td><td class=\"num\">" << significant(m.predict_ms_per_pair) << "</td></tr>\n";
  out << "</table>\n";
}

void html_config_table(std::ostringstream& out, const BenchResults& r) {
  static const std::vector<std::string> kOrder = {"mode",
                                                  "seed",
                                                  "model",
                                                  "n_users",
                                                  "n_seen",
                                                  "n_unseen",
                                                  "budgets",
                                                  "n_train_prompts",
                                                  "n_test_prompts",
                                                  "candidates_per_prompt",
                                                  "best_of_n",
                                                  "test_pairs_per_user",
                                                  "pairs_per_dimension",
                                                  "beta",
                                                  "max_new_tokens",
                                                  "temperature",
                                                  "top_p",
                                                  "base_method",
                                                  "expected_ceiling_accuracy",
                                                  "dimensions"};
  std::vector<std::string> keys;
  for (const auto& k : kOrder)
    if (r.config.contains(k)) keys.push_back(k);
  for (const auto& [k, v] : r.config.items())
    if (std::find(kOrder.begin(), kOrder.end(), k) == kOrder.end()) keys.push_back(k);
  out << "<table>\n";
  for (const auto& k : keys)
    out << "<tr><th>" << escape_html(k) << "</th><td>" << escape_html(config_value(r.config.at(k))) << "</td></tr>\n";
  out << "<tr><th>wall time</th><td>" << duration(r.wall_seconds) << "</td></tr>\n</table>\n";
}

std::string html(const BenchResults& r) {
  const std::string mode = text(r.config, "mode"), seed = config_value(r.config.value("seed", json()));
  const std::string max_b = "b=" + std::to_string(r.max_budget());
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>palign bench: " << escape_html(mode) << ", seed " << escape_html(seed) << "</title>\n<style>" << kCss
      << "</style>\n</head>\n<body>\n<main>\n";
  out << "<h1>palign bench report</h1>\n<p class=\"meta\">" << escape_html(mode) << " mode, seed " << escape_html(seed)
      << " &middot; " << escape_html(config_value(r.config.value("n_users", json()))) << " users ("
      << escape_html(config_value(r.config.value("n_seen", json()))) << " seen, "
      << escape_html(config_value(r.config.value("n_unseen", json()))) << " unseen) &middot; budgets "
      << join_budgets(r.budgets()) << " &middot; model " << escape_html(config_value(r.config.value("model", json())))
      << " &middot; wall time " << duration(r.wall_seconds) << "</p>\n";
  if (const auto lines = headline(r); !lines.empty()) {
    out << "<ul class=\"headline\">\n";
    for (const auto& line : lines) out << "<li>" << escape_html(line) << "</li>\n";
    out << "</ul>\n";
  }

  out << "<h2>Preference accuracy</h2>\n";
  if (!r.accuracy.empty()) {
    out << "<p class=\"note\">Held-out pairwise accuracy on noisy labels: mean over users with a 95% interval "
           "resampling users and test prompts. &ldquo;exp.&rdquo;: expected accuracy, each prediction credited with "
           "the true probability of its order; &ldquo;vs "
        << escape_html(r.baseline_predictor())
        << "&rdquo;: the paired difference in expected accuracy on the same users and items (* the interval "
           "excludes 0). Minority: "
        << escape_html(text(r.config, "minority"))
        << ". Expected ceiling accuracy (true label probabilities on these noisy labels): <b>" << fixed(r.ceiling(), 3)
        << "</b>; chance: 0.500. The best non-oracle mean of each column is highlighted.</p>\n";
  }
  out << "<figure>\n" << plot_accuracy(r) << "</figure>\n";
  if (!r.accuracy.empty()) {
    if (r.has_group("seen")) {
      out << "<h3>Seen users <span class=\"ci\">model fitted on b pairs per user</span></h3>\n";
      html_accuracy_table(out, r, "seen", &AccuracyRow::mean, /*summary=*/true);
    }
    if (r.has_group("unseen")) {
      out << "<h3>Unseen users <span class=\"ci\">model fitted on the seen users at " << max_b
          << "; b = the new user's own pairs</span></h3>\n";
      html_accuracy_table(out, r, "unseen", &AccuracyRow::mean, /*summary=*/true);
    }
    if (r.has_group("seen.minority") || r.has_group("unseen.minority")) {
      out << "<details>\n<summary>The minority's expected accuracy at every budget</summary>\n";
      for (const char* group : {"seen.minority", "unseen.minority"})
        if (r.has_group(group)) {
          out << "<h3>" << (std::string_view(group) == "seen.minority" ? "Seen" : "Unseen")
              << " users of the minority, expected accuracy</h3>\n";
          html_accuracy_table(out, r, group, &AccuracyRow::expected, /*summary=*/false);
        }
      out << "</details>\n";
    } else {
      out << "<details>\n<summary>Worst-decile accuracy at every budget</summary>\n";
      for (const char* group : {"seen", "unseen"})
        if (r.has_group(group)) {
          out << "<h3>" << (std::string_view(group) == "seen" ? "Seen" : "Unseen") << " users, worst decile</h3>\n";
          html_accuracy_table(out, r, group, &AccuracyRow::worst_decile, /*summary=*/false);
        }
      out << "</details>\n";
    }
  }

  if (!r.curves.empty()) {
    out << "<h2>Learning curves</h2>\n<p class=\"note\">Accuracy after b events is in the plot and tables above. "
           "Generation after b events: the hidden utility of the pooled sample each method predicts the user prefers "
           "to the pool's first (best-of-N by its predictions), mean over users &times; test prompts with a 95% "
           "interval; the last column is the paired gain over b=0 (the cold start: the population prior alone), * "
           "where its interval excludes 0.</p>\n";
    out << "<figure>\n" << plot_utility_curves(r) << "</figure>\n";
    for (const char* group : {"seen", "unseen"})
      if (std::any_of(r.curves.begin(), r.curves.end(), [&](const CurveRow& c) { return c.group == group; })) {
        out << "<h3>" << (std::string_view(group) == "seen" ? "Seen" : "Unseen") << " users</h3>\n";
        html_curve_table(out, r, group);
      }
  }
  if (!r.comparisons.empty()) {
    out << "<p class=\"note\">Paired comparisons (expected accuracy, the same users and items; * the interval "
           "excludes 0):</p>\n<ul>\n";
    for (const auto& c : r.comparisons)
      out << "<li><b>" << escape_html(c.name) << "</b>, " << escape_html(c.group)
          << " users: " << escape_html(difference_text(c.difference, kAccuracyDigits)) << " <span class=\"ci\">"
          << escape_html(c.description) << "</span></li>\n";
    out << "</ul>\n";
  }
  if (!r.calibration.empty()) {
    out << "<h2>Calibration</h2>\n<p class=\"note\">Reliability at " << max_b
        << " (seen and unseen users): each method's predictions binned by the predicted probability that the first "
           "response shown is preferred; each cell is the share of the bin's pairs whose first was chosen (count; "
           "hover for the bin's mean prediction). ECE: the count-weighted mean |predicted &minus; observed|.</p>\n";
    html_calibration_table(out, r);
  }

  out << "<h2>Per-user accuracy</h2>\n";
  const std::string chosen = scatter_method(r);
  out << "<figure>\n" << plot_users(r, chosen);
  if (!chosen.empty())
    out << "<figcaption>Method: " << escape_html(chosen)
        << (r.is_oracle(chosen) ? " (oracle; no other method has per-user figures)"
                                : " (the best non-oracle predictor of seen users at " + max_b + ")")
        << ". Each point is one user; alignment is the cosine between the user's preference weights and the "
           "population's mean. Hover a point for its user id.</figcaption>\n";
  out << "</figure>\n";

  out << "<h2>Generation</h2>\n";
  if (!r.generation.empty()) {
    out << "<p class=\"note\">Hidden utility per response at " << max_b
        << " (mean over users &times; test prompts, 95% interval resampling both). The difference, win rate and "
           "oracle-gain share are against "
        << escape_html(r.base_method())
        << " (the base) on the same users and prompts, paired (* the interval excludes 0): share = (method &minus; "
           "base) / (oracle &minus; base).</p>\n";
  }
  out << "<figure>\n" << plot_gain_share(r) << "</figure>\n";
  if (!r.generation.empty()) html_generation_table(out, r);

  if (!r.dimensions.empty()) {
    out << "<h2>Per-dimension heads</h2>\n<p class=\"note\">Each learned head on the pairs of candidates at the "
           "test prompts, labelled by its grader (95% Wilson interval), its correlation with the grader's z-score, "
           "and the pairs it was trained on.</p>\n<table>\n<tr><th>method</th><th>dimension</th><th "
           "class=\"num\">train pairs</th><th class=\"num\">held-out accuracy</th><th class=\"num\">correlation "
           "with grader</th></tr>\n";
    for (const auto& d : r.dimensions)
      out << "<tr><td>" << html_method(r, d.method) << "</td><td>" << escape_html(d.dimension)
          << "</td><td class=\"num\">" << d.train_pairs << "</td><td class=\"num\">"
          << html_figure(d.accuracy, kAccuracyDigits) << "</td><td class=\"num\">" << fixed(d.correlation, 2)
          << "</td></tr>\n";
    out << "</table>\n";
  }

  if (!r.methods.empty()) {
    out << "<h2>Methods</h2>\n";
    html_methods_table(out, r);
  }
  out << "<h2>Configuration</h2>\n";
  html_config_table(out, r);
  out << "<footer>" << kFormat << " version 1, rendered by palign.</footer>\n</main>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace report

std::string render_html(const BenchResults& results) { return report::html(results); }
std::string render_html(const std::string& results_json) { return report::html(results_from_json(results_json)); }

}  // namespace palign::bench
