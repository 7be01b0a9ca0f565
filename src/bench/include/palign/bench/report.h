// Renders bench results (results.h: what run_bench returns, or a results.json document read back) as a Markdown summary
// for the terminal and as one standalone HTML file with inline SVG plots and CSS: no scripts, fonts or stylesheets
// from elsewhere, so it opens offline. Presentation only: nothing is re-measured or re-estimated. Markdown, HTML and
// the SVG plots are report_markdown.cpp, report_html.cpp and report_svg.cpp.
#pragma once

#include <string>
#include <vector>

#include "palign/bench/results.h"

namespace palign::bench {

// The Markdown summary: accuracy per method × budget for seen and unseen users (mean with 95% interval; at the
// largest budget the paired difference from the baseline predictor and the minority's expected accuracy, or an older
// document's worst decile), the ceiling accuracy, the generation table (utility, paired difference, win rate and
// oracle-gain share against the base method, cost per response) and the per-dimension heads. Missing or null figures
// print as "—".
// The string overloads read the document first (results_from_json), and throw as it does.
std::string render_markdown(const BenchResults& results);
std::string render_markdown(const std::string& results_json);

// The HTML report: the same tables plus three SVG plots (oracle-gain share per generating method, accuracy against
// budget, per-user accuracy against alignment with the population), a methods table and the config. All text from
// the document is HTML-escaped. Throws as render_markdown does.
std::string render_html(const BenchResults& results);
std::string render_html(const std::string& results_json);

// Runs that differ only in their seed, side by side: per method the mean over seeds of each headline figure at the
// largest budget (seen and unseen accuracy, the seen minority's expected accuracy, utility, oracle-gain share), its
// standard deviation across seeds and [min, max], and in how many seeds the paired difference from the baseline
// (bt for accuracy, sample for generation) excludes 0, for and against. Throws kInvalidArgument for no runs.
std::string render_seed_spread(const std::vector<BenchResults>& runs);

}  // namespace palign::bench
