// Text formatting shared by the bench reports (see report_internal.h).
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
#include "report_internal.h"

namespace palign::bench {

namespace report {

std::string text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int method_index(const BenchResults& r, const std::string& name) {
  for (size_t i = 0; i < r.methods.size(); ++i)
    if (r.methods[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string fixed(double x, int digits) {
  if (!std::isfinite(x)) return kDash;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_of("123456789") == std::string::npos) s.erase(0, 1);  // no "-0.00"
  return s;
}

std::string figure_text(const Figure& f, Digits d) {
  if (!std::isfinite(f.value)) return kDash;
  std::string s = fixed(f.value, d.value);
  if (std::isfinite(f.lo) && std::isfinite(f.hi))
    s += " [" + fixed(f.lo, d.interval) + ", " + fixed(f.hi, d.interval) + "]";
  return s;
}

std::string difference_text(const Figure& f, Digits d) {
  if (!std::isfinite(f.value)) return kDash;
  std::string s = (f.value > 0 ? "+" : "") + figure_text(f, d);
  if (std::isfinite(f.lo) && std::isfinite(f.hi) && (f.lo > 0 || f.hi < 0)) s += " *";
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

int64_t gain_budget(const BenchResults& r, std::string_view group) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  if (group != "unseen" || budgets.size() < 2 || budgets.front() != 0) return 0;
  const int64_t b = std::find(budgets.begin(), budgets.end(), 16) != budgets.end() ? 16 : budgets.back();
  for (const auto& a : r.accuracy)
    if (a.group == group && a.budget == b && a.vs_b0.present()) return b;
  return 0;  // older documents: no paired gains
}

std::string join_budgets(const std::vector<int64_t>& budgets) {
  std::string s;
  for (int64_t b : budgets) s += (s.empty() ? "" : ", ") + std::to_string(b);
  return s.empty() ? kDash : s;
}

// "oracle (oracle)", "sample (base)": marks that every table and legend shares.
std::string method_label(const BenchResults& r, const std::string& name, bool mark_base) {
  std::string s = name;
  if (r.is_oracle(name)) s += " (oracle)";
  if (mark_base && name == r.base_method()) s += " (base)";
  return s;
}

// The lines under the title: what the run was, and the best non-oracle figures at the largest budget.
std::vector<std::string> headline(const BenchResults& r) {
  std::vector<std::string> lines;
  const std::string b = "b=" + std::to_string(r.max_budget());
  for (const char* group : {"seen", "unseen"}) {
    const std::string best = r.best_predictor(r.max_budget(), group);
    if (best.empty()) continue;
    const AccuracyRow* a = r.find_accuracy(best, r.max_budget(), group);
    lines.push_back(std::string("Best non-oracle predictor for ") + group + " users at " + b + ": " + best + ", " +
                    figure_text(a->mean, kAccuracyDigits) + " (ceiling " + fixed(r.ceiling(), 3) + ")");
  }
  const GenerationRow* best_gen = nullptr;
  for (const auto& g : r.generation)
    if (!r.is_oracle(g.method) && g.method != r.base_method() && std::isfinite(g.utility.value) &&
        (!best_gen || g.utility.value > best_gen->utility.value))
      best_gen = &g;
  if (best_gen)
    lines.push_back("Best non-oracle generator: " + best_gen->method + ", utility " +
                    figure_text(best_gen->utility, kUtilityDigits) + ", oracle-gain share " +
                    figure_text(best_gen->oracle_gain_share, kShareDigits));
  return lines;
}

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

std::string colour_of(const BenchResults& r, const std::string& name) {
  const int i = std::max(0, method_index(r, name));
  return kPalette[static_cast<size_t>(i) % kPalette.size()];
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

}  // namespace report

}  // namespace palign::bench
