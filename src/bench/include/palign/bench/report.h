// Renders bench results (results.h: what run_bench returns, or a results.json document read back) as a Markdown summary
// for the terminal and as one standalone HTML file with inline SVG plots and CSS: no scripts, fonts or stylesheets
// from elsewhere, so it opens offline. Presentation only: nothing is re-measured or re-estimated. Markdown, HTML and
// the SVG plots are report_markdown.cpp, report_html.cpp and report_svg.cpp.
#pragma once

#include <string>

#include "palign/bench/results.h"

namespace palign::bench {

// The Markdown summary: accuracy per method × budget for seen and unseen users (mean with 95% interval, and the
// worst decile at the largest budget), the ceiling accuracy, and the generation table (utility, win rate against the
// base method, oracle-gain share, cost per response). Missing or null figures print as "—".
// The string overloads read the document first (results_from_json), and throw as it does.
std::string render_markdown(const BenchResults& results);
std::string render_markdown(const std::string& results_json);

// The HTML report: the same tables plus three SVG plots (oracle-gain share per generating method, accuracy against
// budget, per-user accuracy against alignment with the population), a methods table and the config. All text from
// the document is HTML-escaped. Throws as render_markdown does.
std::string render_html(const BenchResults& results);
std::string render_html(const std::string& results_json);

}  // namespace palign::bench
