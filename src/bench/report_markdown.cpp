// The bench report as Markdown for the terminal (see report.h).
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

void md_accuracy_table(std::ostringstream& out, const BenchResults& r, std::string_view group) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  const std::string max_b = std::to_string(r.max_budget());
  std::vector<std::string> header{"method"};
  for (int64_t b : budgets) header.push_back("b=" + std::to_string(b));
  header.push_back("worst decile, b=" + max_b);
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : r.predicting()) {
    std::vector<std::string> row{method_label(r, name)};
    bool any = false;
    for (int64_t b : budgets) {
      const AccuracyRow* a = r.find_accuracy(name, b, group);
      any |= a != nullptr;
      row.push_back(a ? figure_text(a->mean, kAccuracyDigits) : kDash);
    }
    const AccuracyRow* worst = r.find_accuracy(name, r.max_budget(), group);
    row.push_back(worst ? figure_text(worst->worst_decile, kAccuracyDigits) : kDash);
    if (any) rows.push_back(std::move(row));
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
    out << "Held-out pairwise accuracy: mean over users [95% bootstrap interval]; the worst decile is the mean of the "
           "lowest 10% of users.\nExpected ceiling accuracy (true label probabilities on these noisy labels): "
        << fixed(r.ceiling(), 3) << "; chance: 0.500.\n\n";
    if (r.has_group("seen")) {
      out << "### Seen users (model fitted on b pairs per user)\n\n";
      md_accuracy_table(out, r, "seen");
    }
    if (r.has_group("unseen")) {
      out << "### Unseen users (model fitted on the seen users at " << max_b << "; b = the new user's own pairs)\n\n";
      md_accuracy_table(out, r, "unseen");
    }
  }

  out << "## Generation\n\n";
  if (r.generation.empty()) {
    out << "No generating method ran.\n\n";
  } else {
    out << "Hidden utility per response at " << max_b
        << " (mean over users x test prompts [95% interval]). Win rate and oracle-gain share are against "
        << r.base_method() << " (the base); share = (method - base) / (oracle - base).\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& g : r.generation)
      rows.push_back({method_label(r, g.method, /*mark_base=*/true), figure_text(g.utility, kUtilityDigits),
                      figure_text(g.win_rate, kAccuracyDigits), fixed(g.oracle_gain_share, 2), fixed(g.wall_ms, 1),
                      fixed(g.tokens, 1), fixed(g.forward_passes, 1)});
    md_table(out,
             {"method", "utility", "win rate vs " + r.base_method(), "oracle-gain share", "ms/response",
              "tokens/response", "forward passes/response"},
             rows);
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
