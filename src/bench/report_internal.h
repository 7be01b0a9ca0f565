// Private to the bench report (report_*.cpp): text formatting shared by the Markdown, SVG and HTML parts, the palette,
// and the plots the HTML page embeds.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "palign/bench/results.h"

namespace palign::bench::report {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kDash = "\xE2\x80\x94";  // "—" in UTF-8: a missing figure
constexpr const char* kFormat = "palign.bench.results";

struct Digits {
  int value, interval;
};
constexpr Digits kAccuracyDigits{3, 2};  // "0.734 [0.70, 0.76]"
constexpr Digits kUtilityDigits{3, 3};   // utilities have no fixed scale
constexpr Digits kShareDigits{2, 2};     // the oracle-gain share

// Tableau 10 plus two darker tones: 12 colours that stay apart on white. Method i (in "methods" order) gets
// kPalette[i % 12] in every plot.
constexpr std::array<const char*, 12> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};
constexpr const char* kInk = "#1d2330";
constexpr const char* kMuted = "#5b6474";
constexpr const char* kGrid = "#e4e8ef";
constexpr const char* kTypical = "#1f77b4";
constexpr const char* kContrarian = "#d62728";

// ---- Text (report_format.cpp).
// A config field as text ("" when absent or null).
std::string text(const json& j, const char* key);
int method_index(const BenchResults& r, const std::string& name);  // -1 when absent
std::string fixed(double x, int digits);                           // "—" for NaN; never "-0.00"
std::string figure_text(const Figure& f, Digits d);
// A paired difference: signed, its interval, and "*" when the interval excludes 0 (outside the noise).
std::string difference_text(const Figure& f, Digits d);
std::string config_value(const json& v);
std::string significant(double x);
std::string duration(double seconds);
std::string join_budgets(const std::vector<int64_t>& budgets);
// The budget whose paired gain over b=0 the unseen users' tables show: 16 when measured (a new user's first pairs),
// else the largest; 0 for another group, when b=0 or any larger budget was not measured, or in older documents.
int64_t gain_budget(const BenchResults& r, std::string_view group);
std::string method_label(const BenchResults& r, const std::string& name, bool mark_base = false);
std::vector<std::string> headline(const BenchResults& r);
std::string escape_html(std::string_view s);
size_t display_width(const std::string& s);  // UTF-8 code points: "—" is one column
// At most max_width code points, with "…" in place of the cut.
std::string shorten(const std::string& s, size_t max_width);
std::string colour_of(const BenchResults& r, const std::string& name);

// ---- Markdown (report_markdown.cpp), HTML (report_html.cpp), the spread across seeds (report_seeds.cpp).
std::string markdown(const BenchResults& r);
std::string html(const BenchResults& r);
std::string seed_spread(const std::vector<BenchResults>& runs);
// A pipe table with columns padded to equal width (numbers right-aligned).
void md_table(std::ostringstream& out, const std::vector<std::string>& header,
              const std::vector<std::vector<std::string>>& rows);

// ---- Plots (report_svg.cpp): each an inline <svg>, or a placeholder when there is nothing to plot.
std::string plot_gain_share(const BenchResults& r);
std::string plot_accuracy(const BenchResults& r);
std::string plot_utility_curves(const BenchResults& r);
std::string scatter_method(const BenchResults& r);
std::string plot_users(const BenchResults& r, const std::string& name);

}  // namespace palign::bench::report
