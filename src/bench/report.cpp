// Bench report rendering (see report.h). The results document is read leniently into plain structs (an absent, null or
// non-numeric figure becomes NaN and prints as "—"), then written as Markdown or as HTML with hand-made SVG: linear
// scales, 1-2-5 ticks, one colour per method that is the same in every plot. Sections: parsing, text formatting,
// Markdown, SVG helpers, the three plots, HTML.
#include "palign/bench/report.h"

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

namespace palign::bench {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kDash = "\xE2\x80\x94";  // "—" in UTF-8: a missing figure
constexpr const char* kFormat = "palign.bench.results";

// ---------------------------------------------------------------------------------------------------------------------
// Parsing

struct Figure {  // a statistic with its 95% interval, as the runner's estimate_json writes it
  double value = kNaN, lo = kNaN, hi = kNaN;
  int64_t n = 0;
};

struct MethodRow {
  std::string name, description;
  bool oracle = false, predicts = false, generates = false;
  double fit_seconds = kNaN, predict_ms_per_pair = kNaN;
};

struct AccuracyRow {
  std::string method, group;  // group: "seen" | "unseen"
  int64_t budget = 0;
  Figure mean, worst_decile;
};

struct GenerationRow {
  std::string method;
  Figure utility, win_rate;
  double oracle_gain_share = kNaN, wall_ms = kNaN, tokens = kNaN, forward_passes = kNaN;
};

struct UserRow {
  std::string user, group;
  double alignment = kNaN;  // cosine with the population's mean preference, in [-1, 1]
  bool contrarian = false;
  std::map<std::string, double> accuracy;  // method -> accuracy at the largest budget
};

double number(const json& j, const char* key) {
  if (!j.is_object()) return kNaN;
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

bool flag(const json& j, const char* key) {
  if (!j.is_object()) return false;
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

Figure figure(const json& j, const char* key) {
  Figure f;
  if (!j.is_object()) return f;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return f;
  f.value = number(*it, "value");
  f.lo = number(*it, "lo");
  f.hi = number(*it, "hi");
  const double n = number(*it, "n");
  f.n = std::isfinite(n) ? static_cast<int64_t>(n) : 0;
  return f;
}

struct Results {
  json config = json::object();
  double wall_seconds = kNaN;
  std::vector<MethodRow> methods;  // the document's order, then methods named only by accuracy or generation rows
  std::vector<AccuracyRow> accuracy;
  std::vector<GenerationRow> generation;
  std::vector<UserRow> per_user;
  std::vector<int64_t> budgets;  // ascending, distinct: the config's and any an accuracy row names
  std::string base_method = "sample";
  double ceiling = kNaN;

  int method_index(const std::string& name) const {
    for (size_t i = 0; i < methods.size(); ++i)
      if (methods[i].name == name) return static_cast<int>(i);
    return -1;
  }
  const MethodRow* method(const std::string& name) const {
    const int i = method_index(name);
    return i < 0 ? nullptr : &methods[static_cast<size_t>(i)];
  }
  bool is_oracle(const std::string& name) const {
    const MethodRow* m = method(name);
    return m && m->oracle;
  }
  MethodRow& ensure_method(const std::string& name) {
    const int i = method_index(name);
    if (i >= 0) return methods[static_cast<size_t>(i)];
    MethodRow m;
    m.name = name;
    methods.push_back(std::move(m));
    return methods.back();
  }
  const AccuracyRow* find_accuracy(const std::string& name, int64_t budget, std::string_view group) const {
    for (const auto& a : accuracy)
      if (a.method == name && a.budget == budget && a.group == group) return &a;
    return nullptr;
  }
  bool has_group(std::string_view group) const {
    return std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.group == group; });
  }
  // Methods with at least one accuracy row, in method order.
  std::vector<std::string> predicting() const {
    std::vector<std::string> out;
    for (const auto& m : methods)
      if (std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.method == m.name; }))
        out.push_back(m.name);
    return out;
  }
  // Budgets that some accuracy row names, ascending.
  std::vector<int64_t> measured_budgets() const {
    std::vector<int64_t> out;
    for (int64_t b : budgets)
      if (std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.budget == b; }))
        out.push_back(b);
    return out;
  }
  int64_t max_budget() const { return budgets.empty() ? 0 : budgets.back(); }
  // The non-oracle method with the highest mean accuracy of `group` at `budget`; "" when none has one.
  std::string best_predictor(int64_t budget, std::string_view group) const {
    std::string best;
    double best_value = -std::numeric_limits<double>::infinity();
    for (const auto& a : accuracy)
      if (a.budget == budget && a.group == group && !is_oracle(a.method) && std::isfinite(a.mean.value) &&
          a.mean.value > best_value) {
        best = a.method;
        best_value = a.mean.value;
      }
    return best;
  }
};

// A budget that converts to int64_t exactly enough to print (a count of pairs).
bool is_budget(double b) { return std::isfinite(b) && std::abs(b) < 1e15; }

// An array section of the document: absent or null reads as empty; anything else that is not an array is malformed.
const json& section(const json& doc, const char* key) {
  static const json kEmpty = json::array();
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return kEmpty;
  PALIGN_CHECK(it->is_array(), ErrorCode::kInvalidArgument, "[bench.report] \"", key,
               "\" must be an array in a results document, found ", it->type_name());
  return *it;
}

Results parse_results(const std::string& results_json) {
  json doc;
  std::string parse_error;
  try {
    doc = json::parse(results_json);
  } catch (const json::exception& e) {
    parse_error = e.what();
  }
  PALIGN_CHECK(parse_error.empty(), ErrorCode::kInvalidArgument, "[bench.report] the results are not JSON (",
               parse_error, "); expected the document `palign bench` writes to results.json");
  PALIGN_CHECK(doc.is_object(), ErrorCode::kInvalidArgument, "[bench.report] expected a JSON object with format \"",
               kFormat, "\", found a JSON ", doc.type_name());
  const auto format = doc.find("format");
  PALIGN_CHECK(format != doc.end() && *format == kFormat, ErrorCode::kInvalidArgument,
               "[bench.report] expected format \"", kFormat, "\", found ",
               format == doc.end() ? std::string("no \"format\" field") : format->dump());
  const double version = number(doc, "version");
  PALIGN_CHECK(std::isfinite(version), ErrorCode::kInvalidArgument,
               "[bench.report] a results document needs a numeric \"version\", found ",
               doc.contains("version") ? doc["version"].dump() : std::string("none"));
  PALIGN_CHECK(version == 1, ErrorCode::kUnsupported, "[bench.report] results version ", doc["version"].dump(),
               " is not supported; this build reads version 1");

  Results r;
  if (doc.contains("config") && doc["config"].is_object()) r.config = doc["config"];
  r.wall_seconds = number(doc, "wall_seconds");
  r.ceiling = number(r.config, "expected_ceiling_accuracy");
  if (const std::string base = text(r.config, "base_method"); !base.empty()) r.base_method = base;

  for (const auto& m : section(doc, "methods")) {
    const std::string name = text(m, "name");
    if (name.empty() || r.method_index(name) >= 0) continue;
    r.methods.push_back({.name = name,
                         .description = text(m, "description"),
                         .oracle = flag(m, "oracle"),
                         .predicts = flag(m, "predicts"),
                         .generates = flag(m, "generates"),
                         .fit_seconds = number(m, "fit_seconds"),
                         .predict_ms_per_pair = number(m, "predict_ms_per_pair")});
  }
  for (const auto& a : section(doc, "accuracy")) {
    const double budget = number(a, "budget");
    AccuracyRow row;
    row.method = text(a, "method");
    row.group = text(a, "group");
    if (row.method.empty() || !is_budget(budget) || (row.group != "seen" && row.group != "unseen")) continue;
    row.budget = static_cast<int64_t>(budget);
    row.mean = figure(a, "mean");
    row.worst_decile = figure(a, "worst_decile");
    r.ensure_method(row.method).predicts = true;
    r.budgets.push_back(row.budget);
    r.accuracy.push_back(std::move(row));
  }
  for (const auto& g : section(doc, "generation")) {
    GenerationRow row;
    row.method = text(g, "method");
    if (row.method.empty()) continue;
    row.utility = figure(g, "utility");
    row.win_rate = figure(g, "win_rate");
    row.oracle_gain_share = number(g, "oracle_gain_share");
    const json cost = g.is_object() && g.contains("cost") ? g["cost"] : json::object();
    row.wall_ms = number(cost, "wall_ms_per_response");
    row.tokens = number(cost, "tokens_per_response");
    row.forward_passes = number(cost, "forward_passes_per_response");
    r.ensure_method(row.method).generates = true;
    r.generation.push_back(std::move(row));
  }
  for (const auto& u : section(doc, "per_user")) {
    if (!u.is_object()) continue;
    UserRow row;
    row.user = text(u, "user");
    row.group = text(u, "group");
    row.alignment = number(u, "alignment");
    row.contrarian = flag(u, "contrarian");
    if (u.contains("accuracy") && u["accuracy"].is_object())
      for (const auto& [name, value] : u["accuracy"].items())
        if (value.is_number()) row.accuracy[name] = value.get<double>();
    r.per_user.push_back(std::move(row));
  }
  if (r.config.contains("budgets") && r.config["budgets"].is_array())
    for (const auto& b : r.config["budgets"])
      if (b.is_number() && is_budget(b.get<double>())) r.budgets.push_back(static_cast<int64_t>(b.get<double>()));
  std::sort(r.budgets.begin(), r.budgets.end());
  r.budgets.erase(std::unique(r.budgets.begin(), r.budgets.end()), r.budgets.end());
  return r;
}

// ---------------------------------------------------------------------------------------------------------------------
// Text formatting

std::string fixed(double x, int digits) {
  if (!std::isfinite(x)) return kDash;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_of("123456789") == std::string::npos) s.erase(0, 1);  // no "-0.00"
  return s;
}

struct Digits {
  int value, interval;
};
constexpr Digits kAccuracyDigits{3, 2};  // "0.734 [0.70, 0.76]"
constexpr Digits kUtilityDigits{3, 3};   // utilities have no fixed scale

std::string figure_text(const Figure& f, Digits d) {
  if (!std::isfinite(f.value)) return kDash;
  std::string s = fixed(f.value, d.value);
  if (std::isfinite(f.lo) && std::isfinite(f.hi))
    s += " [" + fixed(f.lo, d.interval) + ", " + fixed(f.hi, d.interval) + "]";
  return s;
}

// Config values: integers as integers, other numbers with 4 significant digits, arrays joined with ", ".
std::string config_value(const json& v) {
  if (v.is_null()) return kDash;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number()) {
    const double x = v.get<double>();
    if (!std::isfinite(x)) return kDash;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", x);
    return buf;
  }
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ", ") + config_value(e);
    return s.empty() ? kDash : s;
  }
  return v.dump();
}

// Three significant digits, for figures that span orders of magnitude (milliseconds per predicted pair).
std::string significant(double x) {
  if (!std::isfinite(x)) return kDash;
  if (x == 0 || std::abs(x) >= 1) return fixed(x, x == 0 ? 3 : 2);
  return fixed(x, std::min(9, 2 - static_cast<int>(std::floor(std::log10(std::abs(x))))));
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return kDash;
  return seconds < 120 ? fixed(seconds, 1) + " s" : fixed(seconds / 60.0, 1) + " min";
}

std::string join_budgets(const std::vector<int64_t>& budgets) {
  std::string s;
  for (int64_t b : budgets) s += (s.empty() ? "" : ", ") + std::to_string(b);
  return s.empty() ? kDash : s;
}

// "oracle (oracle)", "sample (base)": marks that every table and legend shares.
std::string method_label(const Results& r, const std::string& name, bool mark_base = false) {
  std::string s = name;
  if (r.is_oracle(name)) s += " (oracle)";
  if (mark_base && name == r.base_method) s += " (base)";
  return s;
}

// The lines under the title: what the run was, and the best non-oracle figures at the largest budget.
std::vector<std::string> headline(const Results& r) {
  std::vector<std::string> lines;
  const std::string b = "b=" + std::to_string(r.max_budget());
  for (const char* group : {"seen", "unseen"}) {
    const std::string best = r.best_predictor(r.max_budget(), group);
    if (best.empty()) continue;
    const AccuracyRow* a = r.find_accuracy(best, r.max_budget(), group);
    lines.push_back(std::string("Best non-oracle predictor for ") + group + " users at " + b + ": " + best + ", " +
                    figure_text(a->mean, kAccuracyDigits) + " (ceiling " + fixed(r.ceiling, 3) + ")");
  }
  const GenerationRow* best_gen = nullptr;
  for (const auto& g : r.generation)
    if (!r.is_oracle(g.method) && g.method != r.base_method && std::isfinite(g.utility.value) &&
        (!best_gen || g.utility.value > best_gen->utility.value))
      best_gen = &g;
  if (best_gen)
    lines.push_back("Best non-oracle generator: " + best_gen->method + ", utility " +
                    figure_text(best_gen->utility, kUtilityDigits) + ", oracle-gain share " +
                    fixed(best_gen->oracle_gain_share, 2));
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------------
// Markdown

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

size_t display_width(const std::string& s) {  // UTF-8 code points: "—" is one column
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// At most `max_width` code points, with "…" in place of the cut.
std::string shorten(const std::string& s, size_t max_width) {
  if (display_width(s) <= max_width) return s;
  size_t kept = 0, at = 0;
  for (; at < s.size(); ++at)
    if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80 && kept++ == max_width - 1) break;
  return s.substr(0, at) + "\xE2\x80\xA6";
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

void md_accuracy_table(std::ostringstream& out, const Results& r, std::string_view group) {
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

std::string markdown(const Results& r) {
  std::ostringstream out;
  const std::string max_b = "b=" + std::to_string(r.max_budget());
  const std::string mode = text(r.config, "mode");
  out << "# palign bench: " << (mode.empty() ? "" : md_cell(mode) + " mode, ") << "seed "
      << config_value(r.config.value("seed", json())) << "\n\n";
  out << config_value(r.config.value("n_users", json())) << " users (" << config_value(r.config.value("n_seen", json()))
      << " seen, " << config_value(r.config.value("n_unseen", json())) << " unseen); budgets "
      << join_budgets(r.budgets) << " pairs per user; model " << config_value(r.config.value("model", json()))
      << "; wall time " << duration(r.wall_seconds) << ".\n\n";
  for (const auto& line : headline(r)) out << "- " << line << "\n";

  out << "\n## Preference accuracy\n\n";
  if (r.accuracy.empty()) {
    out << "No predicting method ran.\n\n";
  } else {
    out << "Held-out pairwise accuracy: mean over users [95% bootstrap interval]; the worst decile is the mean of the "
           "lowest 10% of users.\nExpected ceiling accuracy (true label probabilities on these noisy labels): "
        << fixed(r.ceiling, 3) << "; chance: 0.500.\n\n";
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
        << r.base_method << " (the base); share = (method - base) / (oracle - base).\n\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& g : r.generation)
      rows.push_back({method_label(r, g.method, /*mark_base=*/true), figure_text(g.utility, kUtilityDigits),
                      figure_text(g.win_rate, kAccuracyDigits), fixed(g.oracle_gain_share, 2), fixed(g.wall_ms, 1),
                      fixed(g.tokens, 1), fixed(g.forward_passes, 1)});
    md_table(out,
             {"method", "utility", "win rate vs " + r.base_method, "oracle-gain share", "ms/response",
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

// ---------------------------------------------------------------------------------------------------------------------
// SVG helpers

std::string escape_html(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Tableau 10 plus two darker tones: 12 colours that stay apart on white. Method i (in "methods" order) gets
// kPalette[i % 12] in every plot.
constexpr std::array<const char*, 12> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};
constexpr const char* kInk = "#1d2330";
constexpr const char* kMuted = "#5b6474";
constexpr const char* kGrid = "#e4e8ef";
constexpr const char* kTypical = "#1f77b4";
constexpr const char* kContrarian = "#d62728";

std::string colour_of(const Results& r, const std::string& name) {
  const int i = std::max(0, r.method_index(name));
  return kPalette[static_cast<size_t>(i) % kPalette.size()];
}

std::string px(double v) {  // an SVG coordinate; never "nan"
  return std::isfinite(v) ? fixed(v, 1) : "0";
}

struct Scale {  // maps the domain [d0, d1] linearly onto pixels [r0, r1]
  double d0, d1, r0, r1;
  double operator()(double v) const { return d1 == d0 ? (r0 + r1) / 2 : r0 + (v - d0) / (d1 - d0) * (r1 - r0); }
};

struct Ticks {
  double lo = 0, hi = 1;
  std::vector<double> values;
  int digits = 1;
};

// Ticks at a 1-2-5 step giving about `target` intervals; the domain is widened to whole steps.
Ticks nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) {
    const double pad = std::max(std::abs(lo) * 0.1, 0.05);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  Ticks t;
  t.lo = std::floor(lo / step + 1e-9) * step;
  t.hi = std::ceil(hi / step - 1e-9) * step;
  for (int i = 0; t.lo + i * step <= t.hi + step * 1e-6; ++i) {
    const double v = t.lo + i * step;
    t.values.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  t.digits = std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return t;
}

// Keeps a [0, 1] quantity's ticks inside [0, 1].
Ticks clamp_unit(Ticks t) {
  t.lo = std::max(0.0, t.lo);
  t.hi = std::min(1.0, t.hi);
  std::erase_if(t.values, [&](double v) { return v < t.lo - 1e-9 || v > t.hi + 1e-9; });
  return t;
}

class Svg {
 public:
  Svg(double width, double height, const std::string& label) {
    out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << px(width) << ' ' << px(height)
         << "\" role=\"img\" aria-label=\"" << escape_html(label) << "\">\n";
  }
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const char* dash = nullptr) {
    out_ << "<line x1=\"" << px(x1) << "\" y1=\"" << px(y1) << "\" x2=\"" << px(x2) << "\" y2=\"" << px(y2)
         << "\" stroke=\"" << stroke << "\" stroke-width=\"" << px(width) << '"';
    if (dash) out_ << " stroke-dasharray=\"" << dash << '"';
    out_ << "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& fill, double opacity = 1,
            const std::string& tooltip = "") {
    out_ << "<rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(std::max(0.0, w)) << "\" height=\""
         << px(std::max(0.0, h)) << "\" fill=\"" << fill << "\" fill-opacity=\"" << fixed(opacity, 2) << '"';
    close_with_tooltip(tooltip, "rect");
  }
  // A marker: filled, or hollow (white fill, coloured ring).
  void circle(double cx, double cy, double r, const std::string& colour, bool hollow, double opacity = 1,
              const std::string& tooltip = "") {
    out_ << "<circle cx=\"" << px(cx) << "\" cy=\"" << px(cy) << "\" r=\"" << px(r) << "\" fill=\""
         << (hollow ? "#ffffff" : colour) << "\" fill-opacity=\"" << fixed(hollow ? 1 : opacity, 2) << "\" stroke=\""
         << colour << "\" stroke-width=\"" << (hollow ? "1.8" : "0.8") << '"';
    close_with_tooltip(tooltip, "circle");
  }
  void polyline(const std::vector<std::pair<double, double>>& points, const std::string& stroke, double width,
                const char* dash = nullptr) {
    out_ << "<polyline fill=\"none\" stroke=\"" << stroke << "\" stroke-width=\"" << px(width)
         << "\" stroke-linejoin=\"round\" points=\"" << points_text(points) << '"';
    if (dash) out_ << " stroke-dasharray=\"" << dash << '"';
    out_ << "/>\n";
  }
  void polygon(const std::vector<std::pair<double, double>>& points, const std::string& fill, double opacity) {
    out_ << "<polygon fill=\"" << fill << "\" fill-opacity=\"" << fixed(opacity, 2) << "\" stroke=\"none\" points=\""
         << points_text(points) << "\"/>\n";
  }
  // `s` is escaped here. anchor: "start" | "middle" | "end"; rotate: degrees about (x, y).
  void text(double x, double y, const std::string& s, const char* anchor = "start", double size = 12,
            const char* fill = kInk, int weight = 400, double rotate = 0) {
    out_ << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"" << anchor << "\" font-size=\""
         << px(size) << "\" fill=\"" << fill << '"';
    if (weight != 400) out_ << " font-weight=\"" << weight << '"';
    if (rotate != 0) out_ << " transform=\"rotate(" << px(rotate) << ' ' << px(x) << ' ' << px(y) << ")\"";
    out_ << '>' << escape_html(s) << "</text>\n";
  }
  // Text with a white outline, readable where it crosses lines and markers.
  void halo_text(double x, double y, const std::string& s, const char* anchor, double size, const char* fill) {
    out_ << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"" << anchor << "\" font-size=\""
         << px(size) << "\" fill=\"" << fill
         << "\" stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\">"
         << escape_html(s) << "</text>\n";
  }
  std::string finish() {
    out_ << "</svg>\n";
    return out_.str();
  }

 private:
  static std::string points_text(const std::vector<std::pair<double, double>>& points) {
    std::string s;
    for (const auto& [x, y] : points) s += (s.empty() ? "" : " ") + px(x) + "," + px(y);
    return s;
  }
  void close_with_tooltip(const std::string& tooltip, const char* tag) {
    if (tooltip.empty()) {
      out_ << "/>\n";
    } else {
      out_ << "><title>" << escape_html(tooltip) << "</title></" << tag << ">\n";
    }
  }
  std::ostringstream out_;
};

struct Box {  // the plotting area in pixels
  double left, top, right, bottom;
};

constexpr double kWidth = 960;  // every plot's viewBox width; the page scales it to the column
constexpr double kLegendWidth = 210;

// Title, horizontal grid lines with y tick labels, the y label, and the x axis line.
void draw_frame(Svg& svg, const Box& box, const Scale& y, const Ticks& ticks, const std::string& title,
                const std::string& y_label) {
  svg.text(box.left - 56, 26, title, "start", 16, kInk, 600);
  for (double v : ticks.values) {
    svg.line(box.left, y(v), box.right, y(v), kGrid);
    svg.text(box.left - 8, y(v) + 4, fixed(v, ticks.digits), "end", 12, kMuted);
  }
  svg.line(box.left, box.top, box.left, box.bottom, kMuted);
  svg.line(box.left, box.bottom, box.right, box.bottom, kMuted);
  svg.text(box.left - 48, (box.top + box.bottom) / 2, y_label, "middle", 13, kMuted, 400, -90);
}

// A labelled horizontal reference line (chance, ceiling, the oracle's share), labelled at its left end where the
// plots have the fewest marks; skipped outside the domain.
void reference_line(Svg& svg, const Box& box, const Scale& y, double v, const std::string& label, const char* dash) {
  if (!std::isfinite(v) || y(v) < box.top - 0.5 || y(v) > box.bottom + 0.5) return;
  svg.line(box.left, y(v), box.right, y(v), "#3b4252", 1.2, dash);
  svg.halo_text(box.left + 6, y(v) - 5, label, "start", 11, "#3b4252");
}

std::string placeholder(const std::string& message) {
  Svg svg(kWidth, 80, message);
  svg.rect(0.5, 0.5, kWidth - 1, 79, "#f4f6f9");
  svg.text(kWidth / 2, 45, message, "middle", 14, kMuted);
  return svg.finish();
}

// ---------------------------------------------------------------------------------------------------------------------
// The plots

// (1) The share of the oracle's utility gain over the base, one bar per generating method (negative: worse than base).
std::string plot_gain_share(const Results& r) {
  if (r.generation.empty()) return placeholder("No generating method ran: no oracle-gain share to plot.");
  constexpr size_t kMaxLabel = 22;
  const size_t n = r.generation.size();
  const double slot = (kWidth - 30 - 80) / static_cast<double>(n);
  double lo = 0, hi = 1;
  size_t longest = 0;
  for (const auto& g : r.generation) {
    if (std::isfinite(g.oracle_gain_share)) {
      lo = std::min(lo, g.oracle_gain_share);
      hi = std::max(hi, g.oracle_gain_share);
    }
    longest = std::max(longest, std::min(kMaxLabel, display_width(method_label(r, g.method))));
  }
  // Labels that do not fit under their bar are turned 35 degrees, and the plot leaves room below for them.
  const bool rotate = static_cast<double>(longest) * 7.0 > slot * 0.9;
  const double label_room = rotate ? 24 + static_cast<double>(longest) * 7.0 * 0.574 : 30;
  const double height = 330 + label_room;
  const Box box{80, 56, kWidth - 30, height - label_room - 10};
  if (lo < 0) lo -= 0.08 * (hi - lo);  // room under the lowest bar for its value label
  const Ticks ticks = nice_ticks(lo, hi, 6);
  const Scale y{ticks.lo, ticks.hi, box.bottom, box.top};
  Svg svg(kWidth, height, "Oracle-gain share per generating method");
  draw_frame(svg, box, y, ticks, "Share of the oracle's utility gain over " + r.base_method, "oracle-gain share");
  reference_line(svg, box, y, 1.0, "oracle = 1", "6 4");
  const double bar = std::min(70.0, slot * 0.6);
  for (size_t i = 0; i < n; ++i) {
    const GenerationRow& g = r.generation[i];
    const double cx = box.left + slot * (static_cast<double>(i) + 0.5);
    const double v = g.oracle_gain_share;
    if (std::isfinite(v)) {
      const double top = y(std::max(0.0, v)), bottom = y(std::min(0.0, v));
      svg.rect(cx - bar / 2, top, bar, bottom - top, colour_of(r, g.method), 0.9,
               g.method + ": oracle-gain share " + fixed(v, 3));
      svg.text(cx, v >= 0 ? top - 6 : bottom + 15, fixed(v, 2), "middle", 12, kInk, 600);
    } else {
      svg.text(cx, y(0) - 6, g.method == r.base_method ? "base" : "n/a", "middle", 12, kMuted);
    }
    const std::string label = shorten(method_label(r, g.method), kMaxLabel);
    if (rotate)
      svg.text(cx + 4, box.bottom + 16, label, "end", 12, kInk, 400, -35);
    else
      svg.text(cx, box.bottom + 20, label, "middle", 12, kInk);
  }
  svg.line(box.left, y(0), box.right, y(0), kInk, 1.5);  // the base
  return svg.finish();
}

// (2) Accuracy against budget, one colour per predicting method: seen users solid with a 95% band, unseen users dashed
// with 95% error bars. Budgets sit at even spacing (they are usually geometric: 0, 4, 16, 64).
std::string plot_accuracy(const Results& r) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  const std::vector<std::string> methods = r.predicting();
  if (budgets.empty() || methods.empty()) return placeholder("No predicting method ran: no accuracy to plot.");
  const double height = 440;
  const Box box{80, 56, kWidth - kLegendWidth - 20, height - 60};
  double lo = 0.45, hi = std::isfinite(r.ceiling) ? r.ceiling : 0.55;
  for (const auto& a : r.accuracy)
    for (double v : {a.mean.value, a.mean.lo, a.mean.hi})
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  const Ticks ticks = clamp_unit(nice_ticks(lo, hi + 0.01, 6));
  const Scale y{ticks.lo, ticks.hi, box.bottom, box.top};
  const double slot = (box.right - box.left) / static_cast<double>(budgets.size());
  auto x_of = [&](size_t budget_idx) { return box.left + slot * (static_cast<double>(budget_idx) + 0.5); };
  // Methods are dodged a few pixels apart so that their error bars do not sit on top of each other.
  const double m = static_cast<double>(methods.size());
  const double dodge = std::min(5.0, slot * 0.4 / m);

  Svg svg(kWidth, height, "Preference accuracy against budget");
  draw_frame(svg, box, y, ticks, "Preference accuracy against budget (mean, 95% interval)", "held-out accuracy");
  for (size_t bi = 0; bi < budgets.size(); ++bi) {
    svg.line(x_of(bi), box.bottom, x_of(bi), box.bottom + 5, kMuted);
    svg.text(x_of(bi), box.bottom + 20, std::to_string(budgets[bi]), "middle", 12, kMuted);
  }
  svg.text((box.left + box.right) / 2, box.bottom + 44, "budget b (labelled pairs per user)", "middle", 13, kMuted);

  struct Point {
    double x, value, lo, hi;
  };
  auto series = [&](const std::string& name, size_t k, std::string_view group) {
    std::vector<std::vector<Point>> runs(1);  // consecutive budgets with a value; a missing one breaks the line
    for (size_t bi = 0; bi < budgets.size(); ++bi) {
      const AccuracyRow* a = r.find_accuracy(name, budgets[bi], group);
      if (!a || !std::isfinite(a->mean.value)) {
        if (!runs.back().empty()) runs.emplace_back();
        continue;
      }
      runs.back().push_back(
          {x_of(bi) + (static_cast<double>(k) - (m - 1) / 2) * dodge, a->mean.value, a->mean.lo, a->mean.hi});
    }
    if (runs.back().empty()) runs.pop_back();
    return runs;
  };
  // Bands first, so that every line is drawn over every band.
  for (size_t k = 0; k < methods.size(); ++k)
    for (const auto& run : series(methods[k], k, "seen")) {
      std::vector<std::pair<double, double>> poly;
      for (const auto& p : run)
        if (std::isfinite(p.lo) && std::isfinite(p.hi)) poly.emplace_back(p.x, y(p.hi));
      for (auto it = run.rbegin(); it != run.rend(); ++it)
        if (std::isfinite(it->lo) && std::isfinite(it->hi)) poly.emplace_back(it->x, y(it->lo));
      if (poly.size() >= 4) svg.polygon(poly, colour_of(r, methods[k]), 0.12);
    }
  reference_line(svg, box, y, 0.5, "chance 0.5", "2 3");
  reference_line(svg, box, y, r.ceiling, "ceiling " + fixed(r.ceiling, 3), "6 4");
  for (size_t k = 0; k < methods.size(); ++k) {
    const std::string colour = colour_of(r, methods[k]);
    for (const char* group : {"seen", "unseen"}) {
      const bool unseen = std::string_view(group) == "unseen";
      for (const auto& run : series(methods[k], k, group)) {
        std::vector<std::pair<double, double>> line;
        for (const auto& p : run) line.emplace_back(p.x, y(p.value));
        if (line.size() >= 2) svg.polyline(line, colour, 2, unseen ? "7 4" : nullptr);
        for (const auto& p : run) {
          if (unseen && std::isfinite(p.lo) && std::isfinite(p.hi)) {
            svg.line(p.x, y(p.lo), p.x, y(p.hi), colour, 1.2);
            svg.line(p.x - 3, y(p.lo), p.x + 3, y(p.lo), colour, 1.2);
            svg.line(p.x - 3, y(p.hi), p.x + 3, y(p.hi), colour, 1.2);
          }
          svg.circle(p.x, y(p.value), 3.8, colour, unseen, 1,
                     methods[k] + ", " + group + " users: " + fixed(p.value, 3) + " [" + fixed(p.lo, 3) + ", " +
                         fixed(p.hi, 3) + "]");
        }
      }
    }
  }
  // Legend: methods, then the line styles.
  const double lx = box.right + 28;
  double ly = box.top + 4;
  svg.text(lx, ly, "Method", "start", 12, kInk, 600);
  for (const auto& name : methods) {
    ly += 19;
    svg.line(lx, ly - 4, lx + 22, ly - 4, colour_of(r, name), 3);
    svg.text(lx + 30, ly, shorten(method_label(r, name), 24));
  }
  ly += 30;
  svg.line(lx, ly - 4, lx + 22, ly - 4, kInk, 2);
  svg.circle(lx + 11, ly - 4, 3.8, kInk, false);
  svg.text(lx + 30, ly, "seen users (band: 95%)");
  ly += 19;
  svg.line(lx, ly - 4, lx + 22, ly - 4, kInk, 2, "7 4");
  svg.circle(lx + 11, ly - 4, 3.8, kInk, true);
  svg.text(lx + 30, ly, "unseen users (bars: 95%)");
  return svg.finish();
}

// The method the per-user plot shows: the best non-oracle predictor of seen users at the largest budget that has
// per-user figures, else any predictor with per-user figures (the oracle); "" when none.
std::string scatter_method(const Results& r) {
  auto has_users = [&](const std::string& name) {
    return std::any_of(r.per_user.begin(), r.per_user.end(), [&](const UserRow& u) {
      const auto it = u.accuracy.find(name);
      return it != u.accuracy.end() && std::isfinite(it->second) && std::isfinite(u.alignment);
    });
  };
  std::string best;
  double best_value = -std::numeric_limits<double>::infinity();
  for (int pass = 0; pass < 2 && best.empty(); ++pass)
    for (const auto& name : r.predicting()) {
      if (pass == 0 && r.is_oracle(name)) continue;
      const AccuracyRow* a = r.find_accuracy(name, r.max_budget(), "seen");
      const double v = a && std::isfinite(a->mean.value) ? a->mean.value : -1e9;
      if (has_users(name) && (best.empty() || v > best_value)) best = name, best_value = v;
    }
  return best;
}

// (3) Per-user accuracy at the largest budget against the user's alignment with the population, for one method:
// colour = contrarian or not, filled = seen, hollow = unseen.
std::string plot_users(const Results& r, const std::string& name) {
  if (name.empty()) return placeholder("No per-user accuracy to plot.");
  const double height = 440;
  const Box box{80, 56, kWidth - kLegendWidth - 20, height - 60};
  double x_lo = 0, x_hi = 0, y_lo = 0.5, y_hi = std::isfinite(r.ceiling) ? r.ceiling : 0.5;
  bool first = true;
  for (const auto& u : r.per_user) {
    const auto it = u.accuracy.find(name);
    if (it == u.accuracy.end() || !std::isfinite(it->second) || !std::isfinite(u.alignment)) continue;
    x_lo = first ? u.alignment : std::min(x_lo, u.alignment);
    x_hi = first ? u.alignment : std::max(x_hi, u.alignment);
    first = false;
    y_lo = std::min(y_lo, it->second);
    y_hi = std::max(y_hi, it->second);
  }
  const Ticks xt = nice_ticks(x_lo, x_hi, 8);
  const Ticks yt = clamp_unit(nice_ticks(y_lo, y_hi, 6));
  const Scale x{xt.lo, xt.hi, box.left + 16, box.right - 16};  // inset: points at the domain's ends clear the axes
  const Scale y{yt.lo, yt.hi, box.bottom, box.top};
  const std::string b = "b=" + std::to_string(r.max_budget());
  Svg svg(kWidth, height, "Per-user accuracy against alignment");
  draw_frame(svg, box, y, yt, "Per-user accuracy at " + b + " against alignment: " + shorten(method_label(r, name), 40),
             "held-out accuracy at " + b);
  for (double v : xt.values) {
    svg.line(x(v), box.bottom, x(v), box.bottom + 5, kMuted);
    svg.text(x(v), box.bottom + 20, fixed(v, xt.digits), "middle", 12, kMuted);
  }
  if (xt.lo < 0 && xt.hi > 0) svg.line(x(0), box.top, x(0), box.bottom, kGrid, 1.5);
  svg.text((box.left + box.right) / 2, box.bottom + 44, "alignment with the population preference (cosine)", "middle",
           13, kMuted);
  reference_line(svg, box, y, 0.5, "chance 0.5", "2 3");
  reference_line(svg, box, y, r.ceiling, "ceiling " + fixed(r.ceiling, 3), "6 4");
  // Typical users first, so that the (fewer) contrarians are drawn on top.
  for (bool contrarian : {false, true})
    for (const auto& u : r.per_user) {
      const auto it = u.accuracy.find(name);
      if (u.contrarian != contrarian || it == u.accuracy.end() || !std::isfinite(it->second) ||
          !std::isfinite(u.alignment))
        continue;
      const bool unseen = u.group == "unseen";
      svg.circle(x(u.alignment), y(it->second), 4.5, contrarian ? kContrarian : kTypical, unseen, 0.7,
                 u.user + " (" + u.group + (contrarian ? ", contrarian" : "") + "): alignment " +
                     fixed(u.alignment, 3) + ", accuracy " + fixed(it->second, 3));
    }
  const double lx = box.right + 28;
  double ly = box.top + 4;
  svg.text(lx, ly, "User", "start", 12, kInk, 600);
  ly += 20;
  svg.circle(lx + 8, ly - 4, 4.5, kTypical, false, 0.7);
  svg.text(lx + 22, ly, "typical, seen");
  ly += 19;
  svg.circle(lx + 8, ly - 4, 4.5, kTypical, true);
  svg.text(lx + 22, ly, "typical, unseen");
  ly += 19;
  svg.circle(lx + 8, ly - 4, 4.5, kContrarian, false, 0.7);
  svg.text(lx + 22, ly, "contrarian, seen");
  ly += 19;
  svg.circle(lx + 8, ly - 4, 4.5, kContrarian, true);
  svg.text(lx + 22, ly, "contrarian, unseen");
  return svg.finish();
}

// ---------------------------------------------------------------------------------------------------------------------
// HTML

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

std::string html_method(const Results& r, const std::string& name, bool mark_base = false) {
  std::string s = "<span class=\"swatch\" style=\"background:" + colour_of(r, name) + "\"></span>" + escape_html(name);
  if (r.is_oracle(name)) s += "<span class=\"tag\">oracle</span>";
  if (mark_base && name == r.base_method) s += "<span class=\"tag base\">base</span>";
  return s;
}

// Accuracy per method × budget for one group (`worst`: the worst decile instead of the mean). The best non-oracle
// mean of each column is highlighted.
void html_accuracy_table(std::ostringstream& out, const Results& r, std::string_view group, bool worst) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  // More than 4 budgets: intervals go under their values, so that the table fits the page.
  out << (budgets.size() > 4 ? "<table class=\"stack\">" : "<table>") << "\n<tr><th>method</th>";
  for (int64_t b : budgets) out << "<th class=\"num\">b=" << b << "</th>";
  if (!worst) out << "<th class=\"num\">worst decile, b=" << r.max_budget() << "</th>";
  out << "</tr>\n";
  std::vector<std::string> best;
  for (int64_t b : budgets) best.push_back(worst ? "" : r.best_predictor(b, group));
  for (const auto& name : r.predicting()) {
    std::ostringstream row;
    bool any = false;
    row << "<tr><td>" << html_method(r, name) << "</td>";
    for (size_t bi = 0; bi < budgets.size(); ++bi) {
      const AccuracyRow* a = r.find_accuracy(name, budgets[bi], group);
      any |= a != nullptr;
      row << "<td class=\"num" << (best[bi] == name ? " best" : "") << "\"";
      if (a) row << " title=\"n = " << (worst ? a->worst_decile.n : a->mean.n) << "\"";
      row << '>' << (a ? html_figure(worst ? a->worst_decile : a->mean, kAccuracyDigits) : kDash) << "</td>";
    }
    if (!worst) {
      const AccuracyRow* a = r.find_accuracy(name, r.max_budget(), group);
      row << "<td class=\"num\">" << (a ? html_figure(a->worst_decile, kAccuracyDigits) : kDash) << "</td>";
    }
    row << "</tr>\n";
    if (any) out << row.str();
  }
  out << "</table>\n";
}

void html_generation_table(std::ostringstream& out, const Results& r) {
  out << "<table>\n<tr><th>method</th><th class=\"num\">utility</th><th class=\"num\">win rate vs "
      << escape_html(r.base_method)
      << "</th><th class=\"num\">oracle-gain share</th><th class=\"num\">ms/response</th>"
         "<th class=\"num\">tokens/response</th><th class=\"num\">forward passes/response</th></tr>\n";
  for (const auto& g : r.generation)
    out << "<tr><td>" << html_method(r, g.method, /*mark_base=*/true) << "</td><td class=\"num\">"
        << html_figure(g.utility, kUtilityDigits) << "</td><td class=\"num\">"
        << html_figure(g.win_rate, kAccuracyDigits) << "</td><td class=\"num\">" << fixed(g.oracle_gain_share, 2)
        << "</td><td class=\"num\">" << fixed(g.wall_ms, 1) << "</td><td class=\"num\">" << fixed(g.tokens, 1)
        << "</td><td class=\"num\">" << fixed(g.forward_passes, 1) << "</td></tr>\n";
  out << "</table>\n";
}

void html_methods_table(std::ostringstream& out, const Results& r) {
  out << "<table>\n<tr><th>method</th><th>description</th><th>predicts</th><th>generates</th>"
         "<th class=\"num\">fit s</th><th class=\"num\">predict ms/pair</th></tr>\n";
  for (const auto& m : r.methods)
    out << "<tr><td>" << html_method(r, m.name) << "</td><td>" << escape_html(m.description) << "</td><td>"
        << (m.predicts ? "yes" : "no") << "</td><td>" << (m.generates ? "yes" : "no") << "</td><td class=\"num\">"
        << fixed(m.fit_seconds, 2) << "</td><td class=\"num\">" << significant(m.predict_ms_per_pair) << "</td></tr>\n";
  out << "</table>\n";
}

void html_config_table(std::ostringstream& out, const Results& r) {
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

std::string html(const Results& r) {
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
      << join_budgets(r.budgets) << " &middot; model " << escape_html(config_value(r.config.value("model", json())))
      << " &middot; wall time " << duration(r.wall_seconds) << "</p>\n";
  if (const auto lines = headline(r); !lines.empty()) {
    out << "<ul class=\"headline\">\n";
    for (const auto& line : lines) out << "<li>" << escape_html(line) << "</li>\n";
    out << "</ul>\n";
  }

  out << "<h2>Preference accuracy</h2>\n";
  if (!r.accuracy.empty()) {
    out << "<p class=\"note\">Held-out pairwise accuracy: mean over users with a 95% bootstrap interval; the worst "
           "decile is the mean of the lowest 10% of users. Expected ceiling accuracy (true label probabilities on "
           "these noisy labels): <b>"
        << fixed(r.ceiling, 3) << "</b>; chance: 0.500. The best non-oracle mean of each column is highlighted.</p>\n";
  }
  out << "<figure>\n" << plot_accuracy(r) << "</figure>\n";
  if (!r.accuracy.empty()) {
    if (r.has_group("seen")) {
      out << "<h3>Seen users <span class=\"ci\">model fitted on b pairs per user</span></h3>\n";
      html_accuracy_table(out, r, "seen", /*worst=*/false);
    }
    if (r.has_group("unseen")) {
      out << "<h3>Unseen users <span class=\"ci\">model fitted on the seen users at " << max_b
          << "; b = the new user's own pairs</span></h3>\n";
      html_accuracy_table(out, r, "unseen", /*worst=*/false);
    }
    out << "<details>\n<summary>Worst-decile accuracy at every budget</summary>\n";
    for (const char* group : {"seen", "unseen"})
      if (r.has_group(group)) {
        out << "<h3>" << (std::string_view(group) == "seen" ? "Seen" : "Unseen") << " users, worst decile</h3>\n";
        html_accuracy_table(out, r, group, /*worst=*/true);
      }
    out << "</details>\n";
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
        << " (mean over users &times; test prompts, 95% interval). Win rate and oracle-gain share are against "
        << escape_html(r.base_method) << " (the base): share = (method &minus; base) / (oracle &minus; base).</p>\n";
  }
  out << "<figure>\n" << plot_gain_share(r) << "</figure>\n";
  if (!r.generation.empty()) html_generation_table(out, r);

  if (!r.methods.empty()) {
    out << "<h2>Methods</h2>\n";
    html_methods_table(out, r);
  }
  out << "<h2>Configuration</h2>\n";
  html_config_table(out, r);
  out << "<footer>" << kFormat << " version 1, rendered by palign.</footer>\n</main>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace

std::string render_markdown(const std::string& results_json) { return markdown(parse_results(results_json)); }

std::string render_html(const std::string& results_json) { return html(parse_results(results_json)); }

}  // namespace palign::bench
