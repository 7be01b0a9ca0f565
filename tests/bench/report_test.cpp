// The bench report on a small hand-written results document: the Markdown tables and their formatted figures, a
// standalone and balanced HTML file with three SVG plots, HTML escaping, null figures as "—", empty sections, and the
// bad-input paths.
#include "palign/bench/report.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "palign/base/error.h"

using namespace palign;
using namespace palign::bench;
using nlohmann::json;

namespace {

const std::string kDash = "\xE2\x80\x94";

json estimate(double value, double lo, double hi, int64_t n) {
  return {{"value", value}, {"lo", lo}, {"hi", hi}, {"n", n}};
}

// A quick-mode-shaped document: random, bt (predict + generate), sample (the base) and oracle; budgets 0/4/16/64;
// 9 seen and 3 unseen users, two of them contrarian. A few figures are null, as the runner writes NaN.
json sample_results() {
  json config = {{"mode", "quick"},
                 {"seed", 7},
                 {"budgets", {0, 4, 16, 64}},
                 {"n_users", 12},
                 {"n_seen", 9},
                 {"n_unseen", 3},
                 {"n_train_prompts", 24},
                 {"n_test_prompts", 8},
                 {"candidates_per_prompt", 8},
                 {"best_of_n", 8},
                 {"test_pairs_per_user", 32},
                 {"pairs_per_dimension", 64},
                 {"beta", 2.5},
                 {"max_new_tokens", 40},
                 {"temperature", 1},
                 {"top_p", 0.95},
                 {"model", "models/default"},
                 {"dimensions", {"computers", "love", "science"}},
                 {"base_method", "sample"},
                 {"expected_ceiling_accuracy", 0.8304}};
  json methods = json::array();
  methods.push_back({{"name", "random"},
                     {"description", "coin-flip predictor (the floor)"},
                     {"oracle", false},
                     {"predicts", true},
                     {"generates", false},
                     {"fit_seconds", 0.0},
                     {"predict_ms_per_pair", 0.0004}});
  methods.push_back({{"name", "bt"},
                     {"description", "population Bradley-Terry <script>alert('x')</script> & co"},
                     {"oracle", false},
                     {"predicts", true},
                     {"generates", true},
                     {"fit_seconds", 3.21},
                     {"predict_ms_per_pair", nullptr}});
  methods.push_back({{"name", "sample"},
                     {"description", "unpersonalized sampling (the base)"},
                     {"oracle", false},
                     {"predicts", false},
                     {"generates", true},
                     {"fit_seconds", 0.0},
                     {"predict_ms_per_pair", nullptr}});
  methods.push_back({{"name", "oracle"},
                     {"description", "ORACLE: reads the hidden utility"},
                     {"oracle", true},
                     {"predicts", true},
                     {"generates", true},
                     {"fit_seconds", 0.01},
                     {"predict_ms_per_pair", 0.002}});

  const std::vector<int> budgets = {0, 4, 16, 64};
  json accuracy = json::array();
  auto add = [&](const std::string& method, int budget, const std::string& group, json mean, json worst) {
    accuracy.push_back(
        {{"method", method}, {"budget", budget}, {"group", group}, {"mean", mean}, {"worst_decile", worst}});
  };
  const double bt_seen[] = {0.612, 0.655, 0.703, 0.734}, bt_unseen[] = {0.598, 0.631, 0.662, 0.691};
  for (size_t bi = 0; bi < budgets.size(); ++bi) {
    const int b = budgets[bi];
    const double r_seen = 0.49 + 0.01 * static_cast<double>(bi);
    json random_worst = estimate(0.38, 0.33, 0.42, 9);
    if (b == 0) random_worst["lo"] = nullptr;
    add("random", b, "seen", estimate(r_seen, r_seen - 0.03, r_seen + 0.03, 9), random_worst);
    json random_unseen = estimate(0.51, 0.45, 0.57, 3);
    if (b == 16) random_unseen["value"] = nullptr;
    add("random", b, "unseen", random_unseen, estimate(0.41, 0.36, 0.47, 3));
    if (b == 64)
      add("bt", b, "seen", estimate(0.734, 0.7049, 0.7612, 9), estimate(0.55, 0.481, 0.602, 9));
    else
      add("bt", b, "seen", estimate(bt_seen[bi], bt_seen[bi] - 0.04, bt_seen[bi] + 0.04, 9),
          estimate(bt_seen[bi] - 0.15, bt_seen[bi] - 0.2, bt_seen[bi] - 0.1, 9));
    add("bt", b, "unseen", estimate(bt_unseen[bi], bt_unseen[bi] - 0.06, bt_unseen[bi] + 0.06, 3),
        estimate(bt_unseen[bi] - 0.12, bt_unseen[bi] - 0.2, bt_unseen[bi] - 0.05, 3));
    add("oracle", b, "seen", estimate(0.829, 0.815, 0.842, 9), estimate(0.77, 0.74, 0.8, 9));
    add("oracle", b, "unseen", estimate(0.833, 0.81, 0.85, 3), estimate(0.79, 0.75, 0.82, 3));
  }

  json generation = json::array();
  generation.push_back(
      {{"method", "bt"},
       {"utility", estimate(0.31, 0.24, 0.38, 96)},
       {"win_rate", estimate(0.58, 0.551, 0.612, 96)},
       {"oracle_gain_share", 0.4222},
       {"cost",
        {{"wall_ms_per_response", 101.04}, {"tokens_per_response", 38.0}, {"forward_passes_per_response", 8.0}}}});
  generation.push_back(
      {{"method", "sample"},
       {"utility", estimate(0.12, 0.05, 0.19, 96)},
       {"win_rate", nullptr},
       {"oracle_gain_share", nullptr},
       {"cost",
        {{"wall_ms_per_response", 12.5}, {"tokens_per_response", 38.2}, {"forward_passes_per_response", 1.0}}}});
  generation.push_back(
      {{"method", "oracle"},
       {"utility", estimate(0.57, 0.5, 0.64, 96)},
       {"win_rate", estimate(0.71, 0.66, 0.76, 96)},
       {"oracle_gain_share", 1.0},
       {"cost",
        {{"wall_ms_per_response", 100.2}, {"tokens_per_response", 38.1}, {"forward_passes_per_response", 8.0}}}});

  json per_user = json::array();
  for (int u = 0; u < 12; ++u) {
    const bool contrarian = u == 2 || u == 10;
    const double alignment = contrarian ? -0.55 - 0.05 * u / 10.0 : 0.3 + 0.05 * u;
    char id[8];
    std::snprintf(id, sizeof id, "u%04d", u);
    per_user.push_back({{"user", id},
                        {"group", u < 9 ? "seen" : "unseen"},
                        {"alignment", alignment},
                        {"contrarian", contrarian},
                        {"accuracy",
                         {{"random", 0.5 + 0.01 * (u % 5) - 0.02},
                          {"bt", contrarian ? 0.375 : 0.65 + 0.02 * (u % 6)},
                          {"oracle", 0.8 + 0.01 * (u % 4)}}},
                        {"utility", {{"sample", 0.1}, {"bt", contrarian ? -0.2 : 0.35}, {"oracle", 0.6}}}});
  }
  return {{"format", "palign.bench.results"},
          {"version", 1},
          {"config", config},
          {"wall_seconds", 95.24},
          {"methods", methods},
          {"accuracy", accuracy},
          {"generation", generation},
          {"per_user", per_user}};
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// The first line of `text` at or after `from` that starts with `prefix`; "" when none.
std::string line_starting(const std::string& text, const std::string& prefix, const std::string& from = "") {
  std::istringstream in(text.substr(from.empty() ? 0 : text.find(from)));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

// Structure checks every HTML rendering must pass, whatever the data.
// Three plots, and a fourth (the learning curves of generation) when the document has curve rows.
void expect_well_formed_html(const std::string& html, size_t plots = 3) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>\n"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), plots);
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  for (const char* tag : {"table", "tr", "figure", "details", "text", "title", "ul", "h2", "h3", "main"})
    EXPECT_EQ(count(html, std::string("<") + tag + ">") + count(html, std::string("<") + tag + " "),
              count(html, std::string("</") + tag + ">"))
        << "unbalanced <" << tag << ">";
  EXPECT_FALSE(std::regex_search(html, std::regex("\\b-?(nan|inf|infinity)\\b", std::regex::icase)))
      << "a NaN or infinity leaked into the HTML";
  // Offline: no scripts, stylesheets, fonts or images from elsewhere; the only URL is the SVG namespace.
  for (const char* bad : {"<script", "<link", "src=", "url(", "@import"})
    EXPECT_EQ(html.find(bad), std::string::npos) << bad;
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
}

// Every Markdown table row has as many unescaped pipes as its header.
void expect_markdown_tables_aligned(const std::string& md) {
  std::istringstream in(md);
  size_t pipes = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("|", 0) != 0) {
      pipes = 0;
      continue;
    }
    size_t n = 0;
    for (size_t i = 0; i < line.size(); ++i) n += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    if (pipes == 0) pipes = n;
    EXPECT_EQ(n, pipes) << line;
  }
}

}  // namespace

TEST(Report, MarkdownHasTablesAndFormattedFigures) {
  const std::string md = render_markdown(sample_results().dump(2));
  std::printf("%s", md.c_str());
  EXPECT_NE(md.find("# palign bench: quick mode, seed 7"), std::string::npos);
  EXPECT_NE(md.find("12 users (9 seen, 3 unseen)"), std::string::npos);
  EXPECT_NE(md.find("wall time 95.2 s"), std::string::npos);
  EXPECT_NE(md.find("### Seen users"), std::string::npos);
  EXPECT_NE(md.find("### Unseen users"), std::string::npos);
  EXPECT_NE(md.find("Expected ceiling accuracy"), std::string::npos);
  EXPECT_NE(md.find("0.830"), std::string::npos);
  const std::string header = line_starting(md, "| method", "### Seen users");
  for (const char* col : {"b=0", "b=4", "b=16", "b=64", "worst decile, b=64"})
    EXPECT_NE(header.find(col), std::string::npos) << col;

  const std::string bt_seen = line_starting(md, "| bt ", "### Seen users");
  EXPECT_NE(bt_seen.find("0.734 [0.70, 0.76]"), std::string::npos) << bt_seen;
  EXPECT_NE(bt_seen.find("0.550 [0.48, 0.60]"), std::string::npos) << bt_seen;  // worst decile at b=64
  EXPECT_NE(line_starting(md, "| oracle (oracle) ", "### Seen users").find("0.829 [0.81, 0.84]"), std::string::npos);
  EXPECT_NE(line_starting(md, "| bt ", "### Unseen users").find("0.691 [0.63, 0.75]"), std::string::npos);

  const std::string bt_gen = line_starting(md, "| bt ", "## Generation");
  for (const char* figure : {"0.310 [0.240, 0.380]", "0.580 [0.55, 0.61]", "0.42", "101.0", "38.0", "8.0"})
    EXPECT_NE(bt_gen.find(figure), std::string::npos) << figure << " in " << bt_gen;
  EXPECT_NE(md.find("| sample (base) "), std::string::npos);
  EXPECT_NE(md.find("win rate vs sample"), std::string::npos);
  EXPECT_NE(md.find("Best non-oracle predictor for seen users at b=64: bt"), std::string::npos);
  EXPECT_NE(md.find("Best non-oracle generator: bt"), std::string::npos);
  EXPECT_EQ(md.find("bt (oracle)"), std::string::npos);
  expect_markdown_tables_aligned(md);
}

// A document with paired differences and minority rows shows them (and no worst decile); a difference whose interval
// excludes 0 is marked.
TEST(Report, PairedDifferencesAndTheMinority) {
  json doc = sample_results();
  doc["config"]["minority"] = "contrarians and the least-aligned decile";
  for (auto& a : doc["accuracy"]) {
    a.erase("worst_decile");
    a["expected"] = estimate(0.7, 0.68, 0.72, 9);
    if (a["method"] != "bt") a["vs_base"] = estimate(a["method"] == "oracle" ? 0.12 : -0.01, -0.03, 0.01, 9);
    if (a["method"] == "oracle") a["vs_base"]["lo"] = 0.08, a["vs_base"]["hi"] = 0.16;
  }
  for (const char* m : {"bt", "oracle"})
    doc["accuracy"].push_back({{"method", m},
                               {"budget", 64},
                               {"group", "seen.minority"},
                               {"mean", estimate(0.6, 0.5, 0.7, 3)},
                               {"expected", estimate(m == std::string("bt") ? 0.58 : 0.81, 0.5, 0.9, 3)},
                               {"vs_base", m == std::string("bt") ? json(nullptr) : estimate(0.23, 0.1, 0.35, 3)}});
  doc["generation"][0]["vs_base"] = estimate(0.05, -0.02, 0.11, 9);
  doc["generation"][0]["oracle_gain_share"] = estimate(0.42, -0.1, 0.8, 9);
  for (auto& a : doc["accuracy"])
    if (a["group"] == "unseen" && a["budget"] == 16) a["vs_b0"] = estimate(0.04, 0.01, 0.07, 3);
  const std::string md = render_markdown(doc.dump());
  std::printf("%s", md.c_str());
  const std::string header = line_starting(md, "| method", "### Seen users");
  for (const char* col : {"vs bt, b=64 (exp.)", "minority, b=64 (exp.)", "minority vs bt"})
    EXPECT_NE(header.find(col), std::string::npos) << col;
  EXPECT_EQ(header.find("worst decile"), std::string::npos);
  const std::string oracle = line_starting(md, "| oracle (oracle) ", "### Seen users");
  EXPECT_NE(oracle.find("+0.120 [0.08, 0.16] *"), std::string::npos) << oracle;
  EXPECT_NE(oracle.find("0.810 [0.50, 0.90]"), std::string::npos) << oracle;
  EXPECT_NE(oracle.find("+0.230 [0.10, 0.35] *"), std::string::npos) << oracle;
  EXPECT_EQ(header.find("vs b=0"), std::string::npos) << "the paired gain over b=0 is the unseen users' column";
  EXPECT_NE(line_starting(md, "| method", "### Unseen users").find("b=16 vs b=0 (exp.)"), std::string::npos);
  EXPECT_NE(line_starting(md, "| oracle (oracle) ", "### Unseen users").find("+0.040 [0.01, 0.07] *"),
            std::string::npos);
  const std::string random = line_starting(md, "| random ", "### Seen users");
  EXPECT_NE(random.find("-0.010 [-0.03, 0.01] |"), std::string::npos) << random << ": inside the noise, unmarked";
  EXPECT_NE(md.find("contrarians and the least-aligned decile"), std::string::npos);
  const std::string gen = line_starting(md, "| bt ", "## Generation");
  EXPECT_NE(gen.find("+0.050 [-0.020, 0.110]"), std::string::npos) << gen;
  EXPECT_NE(gen.find("0.42 [-0.10, 0.80]"), std::string::npos) << gen;
  expect_markdown_tables_aligned(md);
  const std::string html = render_html(doc.dump());
  expect_well_formed_html(html);
  EXPECT_NE(html.find("minority vs bt"), std::string::npos);
  EXPECT_NE(html.find("b=16 vs b=0 (exp.)"), std::string::npos);
}

// Two runs' figures side by side: the mean, standard deviation and range across seeds, and how many seeds' paired
// intervals exclude 0.
TEST(Report, SpreadAcrossSeeds) {
  std::vector<BenchResults> runs;
  for (double shift : {0.0, 0.02}) {
    json doc = sample_results();
    doc["config"]["seed"] = shift == 0.0 ? 7 : 8;
    for (auto& a : doc["accuracy"]) {
      a["mean"]["value"] =
          a["mean"]["value"].is_null() ? json(nullptr) : json(a["mean"]["value"].get<double>() + shift);
      if (a["method"] == "oracle") a["vs_base"] = estimate(0.1, shift == 0.0 ? 0.05 : -0.01, 0.2, 9);
    }
    runs.push_back(results_from_json(doc.dump()));
  }
  const std::string md = render_seed_spread(runs);
  std::printf("%s", md.c_str());
  EXPECT_NE(md.find("across seeds (7, 8)"), std::string::npos);
  const std::string bt = line_starting(md, "| bt ", "across seeds");
  EXPECT_NE(bt.find("0.744 ± 0.014 [0.734, 0.754]"), std::string::npos) << bt;  // seen accuracy at b=64
  const std::string oracle = line_starting(md, "| oracle (oracle) ", "across seeds");
  EXPECT_NE(oracle.find("1+ / 0\xE2\x88\x92 of 2"), std::string::npos) << oracle;
  expect_markdown_tables_aligned(md);
  EXPECT_THROW(render_seed_spread({}), Error);
}

TEST(Report, NullFiguresRenderAsDash) {
  const std::string md = render_markdown(sample_results().dump());
  const std::string sample_gen = line_starting(md, "| sample (base) ", "## Generation");
  std::printf("%s\n", sample_gen.c_str());
  EXPECT_EQ(count(sample_gen, kDash), 3u);  // the difference, win rate and oracle-gain share
  const std::string random_unseen = line_starting(md, "| random ", "### Unseen users");
  std::printf("%s\n", random_unseen.c_str());
  EXPECT_EQ(count(random_unseen, kDash), 1u);  // the null mean at b=16
  // A null interval end drops the interval but keeps the value.
  const std::string bt_methods = line_starting(md, "| bt ", "## Methods");
  EXPECT_NE(bt_methods.find(kDash), std::string::npos);  // predict_ms_per_pair: null
  EXPECT_NE(render_html(sample_results().dump()).find(kDash), std::string::npos);
}

TEST(Report, HtmlIsStandaloneWithThreePlots) {
  const std::string html = render_html(sample_results().dump());
  expect_well_formed_html(html);
  for (const char* name : {">random<", ">bt<", ">sample<", ">oracle<"})
    EXPECT_NE(html.find(name), std::string::npos) << name;
  EXPECT_NE(html.find("0.734 <span class=\"ci\">[0.70, 0.76]</span>"), std::string::npos);
  EXPECT_NE(html.find("Method: bt (the best non-oracle predictor"), std::string::npos);
  EXPECT_NE(html.find("Share of the oracle&#39;s utility gain over sample"), std::string::npos);
  EXPECT_NE(html.find("<th>expected_ceiling_accuracy</th><td>0.8304</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>dimensions</th><td>computers, love, science</td>"), std::string::npos);
  const std::string path = ::testing::TempDir() + "palign_report_test.html";
  std::ofstream(path) << html;
  std::printf("HTML report: %zu bytes, %zu <svg>, written to %s\n", html.size(), count(html, "<svg"), path.c_str());
}

TEST(Report, HtmlEscapesEveryTextFromTheDocument) {
  json doc = sample_results();
  doc["config"]["mode"] = "quick<b>";
  // Rename random to a name full of markup, everywhere it appears.
  const std::string evil = "r<i>&\"'";
  doc["methods"][0]["name"] = evil;
  for (auto& a : doc["accuracy"])
    if (a["method"] == "random") a["method"] = evil;
  for (auto& u : doc["per_user"]) {
    u["accuracy"][evil] = u["accuracy"]["random"];
    u["accuracy"].erase("random");
  }
  const std::string html = render_html(doc.dump());
  expect_well_formed_html(html);
  EXPECT_NE(html.find("population Bradley-Terry &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"),
            std::string::npos);
  EXPECT_NE(html.find("r&lt;i&gt;&amp;&quot;&#39;"), std::string::npos);
  EXPECT_NE(html.find("quick&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(html.find("quick<b>"), std::string::npos);
  // Markdown keeps text as is but escapes the table separator.
  doc["methods"][0]["name"] = "a|b";
  for (auto& a : doc["accuracy"])
    if (a["method"] == evil) a["method"] = "a|b";
  const std::string md = render_markdown(doc.dump());
  EXPECT_NE(md.find("| a\\|b "), std::string::npos);
  expect_markdown_tables_aligned(md);
}

TEST(Report, EmptySectionsStillRender) {
  // Only predicting methods ran: no generation section, no utilities.
  json predict_only = sample_results();
  predict_only["generation"] = json::array();
  predict_only["methods"].erase(2);  // sample
  for (auto& u : predict_only["per_user"]) u["utility"] = json::object();
  const std::string md1 = render_markdown(predict_only.dump());
  EXPECT_NE(md1.find("No generating method ran."), std::string::npos);
  EXPECT_NE(md1.find("0.734 [0.70, 0.76]"), std::string::npos);
  const std::string html1 = render_html(predict_only.dump());
  expect_well_formed_html(html1);
  EXPECT_NE(html1.find("No generating method ran"), std::string::npos);

  // Only generating methods ran: no accuracy rows and no per-user accuracies.
  json generate_only = sample_results();
  generate_only["accuracy"] = json::array();
  for (auto& u : generate_only["per_user"]) u["accuracy"] = json::object();
  const std::string md2 = render_markdown(generate_only.dump());
  EXPECT_NE(md2.find("No predicting method ran."), std::string::npos);
  EXPECT_NE(md2.find("0.580 [0.55, 0.61]"), std::string::npos);
  const std::string html2 = render_html(generate_only.dump());
  expect_well_formed_html(html2);
  EXPECT_NE(html2.find("No predicting method ran"), std::string::npos);
  EXPECT_NE(html2.find("No per-user accuracy to plot"), std::string::npos);

  // A bare document: every section absent, every config value missing.
  const std::string bare = R"({"format": "palign.bench.results", "version": 1})";
  const std::string md3 = render_markdown(bare);
  std::printf("%s", md3.c_str());
  EXPECT_NE(md3.find(kDash), std::string::npos);
  expect_well_formed_html(render_html(bare));
}

TEST(Report, BadInputThrows) {
  auto code_of = [](const std::string& text) {
    try {
      (void)render_markdown(text);
    } catch (const Error& e) {
      std::printf("%s\n", e.what());
      return e.code();
    }
    return ErrorCode::kSentinel;
  };
  EXPECT_EQ(code_of("not json at all"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(""), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of("[1, 2, 3]"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"version": 1})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"format": "palign.bench.dataset", "version": 1})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"format": "palign.bench.results", "version": 2})"), ErrorCode::kUnsupported);
  EXPECT_EQ(code_of(R"({"format": "palign.bench.results"})"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(R"({"format": "palign.bench.results", "version": 1, "accuracy": 3})"), ErrorCode::kInvalidArgument);
  EXPECT_THROW((void)render_html("{"), Error);
}

// The learning curves, the reliability table and the paired comparisons: in both reports, with the expected
// calibration error computed by hand (bins 0.3–0.4: 10 pairs, predicted 0.35, observed 0.30; 0.7–0.8: 20 pairs,
// predicted 0.72, observed 0.80: (10 · 0.05 + 20 · 0.08) / 30 = 0.070), and the curve plot as a fourth <svg>.
TEST(Report, LearningCurvesCalibrationAndComparisons) {
  json doc = sample_results();
  const double utility[] = {-0.10, 0.02, 0.11, 0.15};
  const int budgets[] = {0, 4, 16, 64};
  for (int i = 0; i < 4; ++i)
    for (const char* group : {"seen", "unseen"}) {
      json row = {{"method", "bt"},
                  {"group", group},
                  {"budget", budgets[i]},
                  {"utility", estimate(utility[i], utility[i] - 0.05, utility[i] + 0.05, 9)},
                  {"vs_b0", i == 0 ? json(nullptr) : estimate(utility[i] - utility[0], 0.01, 0.4, 9)}};
      doc["curves"].push_back(row);
    }
  doc["calibration"] = json::array({{{"method", "bt"}, {"bin", 3}, {"n", 10}, {"predicted", 0.35}, {"observed", 0.30}},
                                    {{"method", "bt"}, {"bin", 7}, {"n", 20}, {"predicted", 0.72}, {"observed", 0.80}},
                                    {{"method", "bt"}, {"bin", 12}, {"n", 5}, {"predicted", 1.5}, {"observed", 1}}});
  doc["comparisons"] = json::array({{{"name", "active@16 - online@64 <i>"},
                                     {"group", "seen"},
                                     {"description", "expected accuracy"},
                                     {"difference", estimate(-0.021, -0.05, 0.01, 9)}}});
  const BenchResults r = results_from_json(doc.dump());
  EXPECT_EQ(r.calibration.size(), 2u);  // the bin outside 0..9 is dropped
  EXPECT_NEAR(r.calibration_error("bt"), 0.07, 1e-12);
  EXPECT_TRUE(std::isnan(r.calibration_error("random")));
  EXPECT_EQ(r.curved(), std::vector<std::string>{"bt"});
  const std::string md = render_markdown(doc.dump());
  std::printf(
      "%s", md.substr(md.find("## Learning curves"), md.find("## Generation") - md.find("## Learning curves")).c_str());
  EXPECT_NE(md.find("## Learning curves"), std::string::npos);
  EXPECT_NE(line_starting(md, "| bt ", "### Unseen users\n\n").find("0.150"), std::string::npos);
  EXPECT_NE(md.find("+0.250 [0.010, 0.400] *"), std::string::npos);  // b=64 vs b=0
  EXPECT_NE(md.find("- active@16 - online@64 <i>, seen users: -0.021 [-0.05, 0.01]"), std::string::npos);
  EXPECT_NE(line_starting(md, "| bt ", "## Calibration").find("0.070"), std::string::npos);
  EXPECT_NE(line_starting(md, "| bt ", "## Calibration").find("0.80 (20)"), std::string::npos);
  const std::string html = render_html(doc.dump());
  expect_well_formed_html(html, /*plots=*/4);
  EXPECT_NE(html.find("Best-of-N utility against budget"), std::string::npos);
  EXPECT_NE(html.find("active@16 - online@64 &lt;i&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(to_json(results_from_json(to_json(r).dump())), to_json(r));
}
