// BenchResults: its views, its JSON form and the lenient reading of a results document (see results.h).
#include "palign/bench/results.h"

#include <algorithm>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/bench/metrics.h"

namespace palign::bench {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kFormat = "palign.bench.results";

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

// A budget that converts to int64_t exactly enough to print (a count of pairs).
bool is_budget(double b) { return std::isfinite(b) && std::abs(b) < 1e15; }

// An array section of the document: absent or null reads as empty; anything else that is not an array is malformed.
const json& section(const json& doc, const char* key) {
  static const json kEmpty = json::array();
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return kEmpty;
  PALIGN_CHECK(it->is_array(), ErrorCode::kInvalidArgument, "[bench.results] \"", key,
               "\" must be an array in a results document, found ", it->type_name());
  return *it;
}

MethodRow& ensure_method(BenchResults& r, const std::string& name) {
  for (auto& m : r.methods)
    if (m.name == name) return m;
  MethodRow m;
  m.name = name;
  r.methods.push_back(std::move(m));
  return r.methods.back();
}

json figure_json(const Figure& f) {
  if (!f.present()) return nullptr;
  return {{"value", finite_or_null(f.value)}, {"lo", finite_or_null(f.lo)}, {"hi", finite_or_null(f.hi)}, {"n", f.n}};
}

}  // namespace

Figure figure_of(const Estimate& e) { return {.value = e.value, .lo = e.lo, .hi = e.hi, .n = e.n}; }

const MethodRow* BenchResults::method(const std::string& name) const {
  for (const auto& m : methods)
    if (m.name == name) return &m;
  return nullptr;
}

bool BenchResults::is_oracle(const std::string& name) const {
  const MethodRow* m = method(name);
  return m && m->oracle;
}

const AccuracyRow* BenchResults::find_accuracy(const std::string& name, int64_t budget, std::string_view group) const {
  for (const auto& a : accuracy)
    if (a.method == name && a.budget == budget && a.group == group) return &a;
  return nullptr;
}

bool BenchResults::has_group(std::string_view group) const {
  return std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.group == group; });
}

std::vector<std::string> BenchResults::predicting() const {
  std::vector<std::string> out;
  for (const auto& m : methods)
    if (std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.method == m.name; }))
      out.push_back(m.name);
  return out;
}

std::vector<int64_t> BenchResults::budgets() const {
  std::vector<int64_t> out;
  for (const auto& a : accuracy) out.push_back(a.budget);
  if (config.contains("budgets") && config["budgets"].is_array())
    for (const auto& b : config["budgets"])
      if (b.is_number() && is_budget(b.get<double>())) out.push_back(static_cast<int64_t>(b.get<double>()));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int64_t> BenchResults::measured_budgets() const {
  std::vector<int64_t> out;
  for (int64_t b : budgets())
    if (std::any_of(accuracy.begin(), accuracy.end(), [&](const AccuracyRow& a) { return a.budget == b; }))
      out.push_back(b);
  return out;
}

int64_t BenchResults::max_budget() const {
  const auto b = budgets();
  return b.empty() ? 0 : b.back();
}

std::string BenchResults::baseline_predictor() const {
  const std::string base = text(config, "baseline_predictor");
  return base.empty() ? "bt" : base;
}

std::string BenchResults::base_method() const {
  const std::string base = text(config, "base_method");
  return base.empty() ? "sample" : base;
}

double BenchResults::ceiling() const { return number(config, "expected_ceiling_accuracy"); }

std::string BenchResults::best_predictor(int64_t budget, std::string_view group) const {
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

double BenchResults::calibration_error(const std::string& name) const {
  double err = 0, n = 0;
  for (const auto& c : calibration)
    if (c.method == name && c.n > 0 && std::isfinite(c.predicted) && std::isfinite(c.observed)) {
      err += static_cast<double>(c.n) * std::abs(c.predicted - c.observed);
      n += static_cast<double>(c.n);
    }
  return n > 0 ? err / n : kNaN;
}

const CurveRow* BenchResults::find_curve(const std::string& name, int64_t budget, std::string_view group) const {
  for (const auto& c : curves)
    if (c.method == name && c.budget == budget && c.group == group) return &c;
  return nullptr;
}

std::vector<int64_t> BenchResults::curve_budgets(std::string_view group) const {
  std::vector<int64_t> out;
  for (const auto& c : curves)
    if (group.empty() || c.group == group) out.push_back(c.budget);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> BenchResults::curved() const {
  std::vector<std::string> out;
  for (const auto& m : methods)
    if (std::any_of(curves.begin(), curves.end(), [&](const CurveRow& c) { return c.method == m.name; }))
      out.push_back(m.name);
  return out;
}

json to_json(const BenchResults& r) {
  json methods = json::array(), accuracy = json::array(), generation = json::array(), per_user = json::array(),
       dimensions = json::array();
  for (const auto& d : r.dimensions)
    dimensions.push_back({{"method", d.method},
                          {"dimension", d.dimension},
                          {"train_pairs", d.train_pairs},
                          {"accuracy", figure_json(d.accuracy)},
                          {"correlation", finite_or_null(d.correlation)}});
  for (const auto& m : r.methods)
    methods.push_back({{"name", m.name},
                       {"description", m.description},
                       {"oracle", m.oracle},
                       {"predicts", m.predicts},
                       {"generates", m.generates},
                       {"fit_seconds", finite_or_null(m.fit_seconds)},
                       {"shared_made", m.shared_made},
                       {"predict_ms_per_pair", finite_or_null(m.predict_ms_per_pair)}});
  for (const auto& a : r.accuracy)
    accuracy.push_back({{"method", a.method},
                        {"budget", a.budget},
                        {"group", a.group},
                        {"mean", figure_json(a.mean)},
                        {"expected", figure_json(a.expected)},
                        {"vs_base", figure_json(a.vs_base)},
                        {"vs_b0", figure_json(a.vs_b0)},
                        {"worst_decile", figure_json(a.worst_decile)}});
  for (const auto& g : r.generation)
    generation.push_back({{"method", g.method},
                          {"utility", figure_json(g.utility)},
                          {"win_rate", figure_json(g.win_rate)},
                          {"vs_base", figure_json(g.vs_base)},
                          {"oracle_gain_share", figure_json(g.oracle_gain_share)},
                          {"own_base", g.own_base},
                          {"vs_own_base", figure_json(g.vs_own_base)},
                          {"cost",
                           {{"wall_ms_per_response", finite_or_null(g.wall_ms)},
                            {"tokens_per_response", finite_or_null(g.tokens)},
                            {"forward_passes_per_response", finite_or_null(g.forward_passes)}}}});
  for (const auto& u : r.per_user)
    per_user.push_back({{"user", u.user},
                        {"group", u.group},
                        {"alignment", finite_or_null(u.alignment)},
                        {"contrarian", u.contrarian},
                        {"minority", u.minority},
                        {"accuracy", u.accuracy},
                        {"utility", u.utility}});
  json curves = json::array(), calibration = json::array(), comparisons = json::array();
  for (const auto& c : r.curves)
    curves.push_back({{"method", c.method},
                      {"group", c.group},
                      {"budget", c.budget},
                      {"utility", figure_json(c.utility)},
                      {"vs_b0", figure_json(c.vs_b0)}});
  for (const auto& c : r.calibration)
    calibration.push_back({{"method", c.method},
                           {"bin", c.bin},
                           {"n", c.n},
                           {"predicted", finite_or_null(c.predicted)},
                           {"observed", finite_or_null(c.observed)}});
  for (const auto& c : r.comparisons)
    comparisons.push_back({{"name", c.name},
                           {"group", c.group},
                           {"description", c.description},
                           {"difference", figure_json(c.difference)}});
  return {{"format", kFormat},          {"version", 1},
          {"config", r.config},         {"wall_seconds", finite_or_null(r.wall_seconds)},
          {"methods", methods},         {"accuracy", accuracy},
          {"generation", generation},   {"dimensions", dimensions},
          {"per_user", per_user},       {"curves", curves},
          {"calibration", calibration}, {"comparisons", comparisons}};
}

BenchResults results_from_json(const std::string& results_json) {
  json doc;
  std::string parse_error;
  try {
    doc = json::parse(results_json);
  } catch (const json::exception& e) {
    parse_error = e.what();
  }
  PALIGN_CHECK(parse_error.empty(), ErrorCode::kInvalidArgument, "[bench.results] the results are not JSON (",
               parse_error, "); expected the document `palign bench` writes to results.json");
  PALIGN_CHECK(doc.is_object(), ErrorCode::kInvalidArgument, "[bench.results] expected a JSON object with format \"",
               kFormat, "\", found a JSON ", doc.type_name());
  const auto format = doc.find("format");
  PALIGN_CHECK(format != doc.end() && *format == kFormat, ErrorCode::kInvalidArgument,
               "[bench.results] expected format \"", kFormat, "\", found ",
               format == doc.end() ? std::string("no \"format\" field") : format->dump());
  const double version = number(doc, "version");
  PALIGN_CHECK(std::isfinite(version), ErrorCode::kInvalidArgument,
               "[bench.results] a results document needs a numeric \"version\", found ",
               doc.contains("version") ? doc["version"].dump() : std::string("none"));
  PALIGN_CHECK(version == 1, ErrorCode::kUnsupported, "[bench.results] results version ", doc["version"].dump(),
               " is not supported; this build reads version 1");

  BenchResults r;
  if (doc.contains("config") && doc["config"].is_object()) r.config = doc["config"];
  r.wall_seconds = number(doc, "wall_seconds");

  for (const auto& m : section(doc, "methods")) {
    const std::string name = text(m, "name");
    if (name.empty() || r.method(name)) continue;
    MethodRow row{.name = name,
                  .description = text(m, "description"),
                  .oracle = flag(m, "oracle"),
                  .predicts = flag(m, "predicts"),
                  .generates = flag(m, "generates"),
                  .fit_seconds = number(m, "fit_seconds"),
                  .predict_ms_per_pair = number(m, "predict_ms_per_pair"),
                  .shared_made = {}};
    if (m.contains("shared_made") && m["shared_made"].is_array())
      for (const auto& s : m["shared_made"])
        if (s.is_string()) row.shared_made.push_back(s.get<std::string>());
    r.methods.push_back(std::move(row));
  }
  for (const auto& a : section(doc, "accuracy")) {
    const double budget = number(a, "budget");
    AccuracyRow row;
    row.method = text(a, "method");
    row.group = text(a, "group");
    const bool known_group =
        row.group == "seen" || row.group == "unseen" || row.group == "seen.minority" || row.group == "unseen.minority";
    if (row.method.empty() || !is_budget(budget) || !known_group) continue;
    row.budget = static_cast<int64_t>(budget);
    row.mean = figure(a, "mean");
    row.expected = figure(a, "expected");
    row.vs_base = figure(a, "vs_base");
    row.vs_b0 = figure(a, "vs_b0");
    row.worst_decile = figure(a, "worst_decile");
    ensure_method(r, row.method).predicts = true;
    r.accuracy.push_back(std::move(row));
  }
  for (const auto& g : section(doc, "generation")) {
    GenerationRow row;
    row.method = text(g, "method");
    if (row.method.empty()) continue;
    row.utility = figure(g, "utility");
    row.win_rate = figure(g, "win_rate");
    row.vs_base = figure(g, "vs_base");
    // Older documents wrote the share as a bare number.
    row.oracle_gain_share = figure(g, "oracle_gain_share");
    if (const double share = number(g, "oracle_gain_share"); std::isfinite(share)) row.oracle_gain_share.value = share;
    row.own_base = text(g, "own_base");
    row.vs_own_base = figure(g, "vs_own_base");
    const json cost = g.is_object() && g.contains("cost") ? g["cost"] : json::object();
    row.wall_ms = number(cost, "wall_ms_per_response");
    row.tokens = number(cost, "tokens_per_response");
    row.forward_passes = number(cost, "forward_passes_per_response");
    ensure_method(r, row.method).generates = true;
    r.generation.push_back(std::move(row));
  }
  for (const auto& d : section(doc, "dimensions")) {
    DimensionRow row;
    row.method = text(d, "method");
    row.dimension = text(d, "dimension");
    if (row.method.empty() || row.dimension.empty()) continue;
    const double n = number(d, "train_pairs");
    row.train_pairs = std::isfinite(n) ? static_cast<int64_t>(n) : 0;
    row.accuracy = figure(d, "accuracy");
    row.correlation = number(d, "correlation");
    r.dimensions.push_back(std::move(row));
  }
  for (const auto& u : section(doc, "per_user")) {
    if (!u.is_object()) continue;
    UserRow row;
    row.user = text(u, "user");
    row.group = text(u, "group");
    row.alignment = number(u, "alignment");
    row.contrarian = flag(u, "contrarian");
    row.minority = flag(u, "minority");
    for (auto [key, into] : {std::pair{"accuracy", &row.accuracy}, std::pair{"utility", &row.utility}})
      if (u.contains(key) && u[key].is_object())
        for (const auto& [name, value] : u[key].items())
          if (value.is_number()) (*into)[name] = value.get<double>();
    r.per_user.push_back(std::move(row));
  }
  for (const auto& c : section(doc, "curves")) {
    CurveRow row;
    row.method = text(c, "method");
    row.group = text(c, "group");
    const double budget = number(c, "budget");
    if (row.method.empty() || row.group.empty() || !is_budget(budget)) continue;
    row.budget = static_cast<int64_t>(budget);
    row.utility = figure(c, "utility");
    row.vs_b0 = figure(c, "vs_b0");
    ensure_method(r, row.method);
    r.curves.push_back(std::move(row));
  }
  for (const auto& c : section(doc, "calibration")) {
    CalibrationRow row;
    row.method = text(c, "method");
    const double bin = number(c, "bin"), n = number(c, "n");
    if (row.method.empty() || !std::isfinite(bin) || bin < 0 || bin > 9 || !std::isfinite(n) || n < 0) continue;
    row.bin = static_cast<int64_t>(bin);
    row.n = static_cast<int64_t>(n);
    row.predicted = number(c, "predicted");
    row.observed = number(c, "observed");
    r.calibration.push_back(std::move(row));
  }
  for (const auto& c : section(doc, "comparisons")) {
    ComparisonRow row;
    row.name = text(c, "name");
    if (row.name.empty()) continue;
    row.group = text(c, "group");
    row.description = text(c, "description");
    row.difference = figure(c, "difference");
    r.comparisons.push_back(std::move(row));
  }
  return r;
}

}  // namespace palign::bench
