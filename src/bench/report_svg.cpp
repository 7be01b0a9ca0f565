// The bench report's plots: hand-made SVG with linear scales, 1-2-5 ticks and one colour per method that is the same
// in every plot (see report_internal.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
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

namespace {

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

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// The plots

// (1) The share of the oracle's utility gain over the base, one bar per generating method (negative: worse than base).
std::string plot_gain_share(const BenchResults& r) {
  if (r.generation.empty()) return placeholder("No generating method ran: no oracle-gain share to plot.");
  constexpr size_t kMaxLabel = 22;
  const size_t n = r.generation.size();
  const double slot = (kWidth - 30 - 80) / static_cast<double>(n);
  double lo = 0, hi = 1;
  size_t longest = 0;
  for (const auto& g : r.generation) {
    if (std::isfinite(g.oracle_gain_share.value)) {
      lo = std::min(lo, g.oracle_gain_share.value);
      hi = std::max(hi, g.oracle_gain_share.value);
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
  draw_frame(svg, box, y, ticks, "Share of the oracle's utility gain over " + r.base_method(), "oracle-gain share");
  reference_line(svg, box, y, 1.0, "oracle = 1", "6 4");
  const double bar = std::min(70.0, slot * 0.6);
  for (size_t i = 0; i < n; ++i) {
    const GenerationRow& g = r.generation[i];
    const double cx = box.left + slot * (static_cast<double>(i) + 0.5);
    const double v = g.oracle_gain_share.value;
    if (std::isfinite(v)) {
      const double top = y(std::max(0.0, v)), bottom = y(std::min(0.0, v));
      svg.rect(cx - bar / 2, top, bar, bottom - top, colour_of(r, g.method), 0.9,
               g.method + ": oracle-gain share " + fixed(v, 3));
      svg.text(cx, v >= 0 ? top - 6 : bottom + 15, fixed(v, 2), "middle", 12, kInk, 600);
    } else {
      svg.text(cx, y(0) - 6, g.method == r.base_method() ? "base" : "n/a", "middle", 12, kMuted);
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

namespace {

// A figure against budget, one colour per method: seen users solid with a 95% band, unseen users dashed with 95% error
// bars. Budgets sit at even spacing (they are usually geometric: 0, 1, 2, 4, …, 64). figure_at: the method's figure at
// a budget and group (null when absent); references: horizontal lines (value, label), drawn when finite.
struct BudgetPlot {
  std::string title, y_label;
  std::function<const Figure*(const std::string& method, int64_t budget, std::string_view group)> figure_at;
  std::vector<std::pair<double, std::string>> references;
  bool unit = false;  // the values are probabilities: the axis stays within [0, 1]
};

std::string plot_budgets(const BenchResults& r, const std::vector<int64_t>& budgets,
                         const std::vector<std::string>& methods, const BudgetPlot& plot) {
  const double height = 440;
  const Box box{80, 56, kWidth - kLegendWidth - 20, height - 60};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& [v, label] : plot.references)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  for (const auto& name : methods)
    for (int64_t b : budgets)
      for (const char* group : {"seen", "unseen"})
        if (const Figure* f = plot.figure_at(name, b, group))
          for (double v : {f->value, f->lo, f->hi})
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  const double pad = std::max(0.01, 0.02 * (hi - lo));
  const Ticks ticks = plot.unit ? clamp_unit(nice_ticks(lo, hi + pad, 6)) : nice_ticks(lo - pad, hi + pad, 6);
  const Scale y{ticks.lo, ticks.hi, box.bottom, box.top};
  const double slot = (box.right - box.left) / static_cast<double>(budgets.size());
  auto x_of = [&](size_t budget_idx) { return box.left + slot * (static_cast<double>(budget_idx) + 0.5); };
  // Methods are dodged a few pixels apart so that their error bars do not sit on top of each other.
  const double m = static_cast<double>(methods.size());
  const double dodge = std::min(5.0, slot * 0.4 / m);

  Svg svg(kWidth, height, plot.title);
  draw_frame(svg, box, y, ticks, plot.title + " (mean, 95% interval)", plot.y_label);
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
      const Figure* f = plot.figure_at(name, budgets[bi], group);
      if (!f || !std::isfinite(f->value)) {
        if (!runs.back().empty()) runs.emplace_back();
        continue;
      }
      runs.back().push_back({x_of(bi) + (static_cast<double>(k) - (m - 1) / 2) * dodge, f->value, f->lo, f->hi});
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
  const char* dashes[] = {"2 3", "6 4"};
  for (size_t i = 0; i < plot.references.size(); ++i)
    reference_line(svg, box, y, plot.references[i].first, plot.references[i].second, dashes[i % 2]);
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

}  // namespace

// (2) Accuracy against budget, one colour per predicting method.
std::string plot_accuracy(const BenchResults& r) {
  const std::vector<int64_t> budgets = r.measured_budgets();
  const std::vector<std::string> methods = r.predicting();
  if (budgets.empty() || methods.empty()) return placeholder("No predicting method ran: no accuracy to plot.");
  BudgetPlot plot{.title = "Preference accuracy against budget", .y_label = "held-out accuracy"};
  plot.figure_at = [&](const std::string& name, int64_t b, std::string_view group) -> const Figure* {
    const AccuracyRow* a = r.find_accuracy(name, b, group);
    return a ? &a->mean : nullptr;
  };
  plot.references = {{0.5, "chance 0.5"}, {r.ceiling(), "ceiling " + fixed(r.ceiling(), 3)}};
  plot.unit = true;
  return plot_budgets(r, budgets, methods, plot);
}

// (2b) The learning curve of generation: each curve method's best-of-N utility by its predictions against budget.
std::string plot_utility_curves(const BenchResults& r) {
  const std::vector<std::string> methods = r.curved();
  const std::vector<int64_t> budgets = r.curve_budgets();
  if (budgets.empty() || methods.empty()) return placeholder("No method with a learning curve ran: nothing to plot.");
  BudgetPlot plot{.title = "Best-of-N utility against budget", .y_label = "hidden utility per response"};
  plot.figure_at = [&](const std::string& name, int64_t b, std::string_view group) -> const Figure* {
    const CurveRow* c = r.find_curve(name, b, group);
    return c ? &c->utility : nullptr;
  };
  return plot_budgets(r, budgets, methods, plot);
}

// The method the per-user plot shows: the best non-oracle predictor of seen users at the largest budget that has
// per-user figures, else any predictor with per-user figures (the oracle); "" when none.
std::string scatter_method(const BenchResults& r) {
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
std::string plot_users(const BenchResults& r, const std::string& name) {
  if (name.empty()) return placeholder("No per-user accuracy to plot.");
  const double height = 440;
  const Box box{80, 56, kWidth - kLegendWidth - 20, height - 60};
  double x_lo = 0, x_hi = 0, y_lo = 0.5, y_hi = std::isfinite(r.ceiling()) ? r.ceiling() : 0.5;
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
  reference_line(svg, box, y, r.ceiling(), "ceiling " + fixed(r.ceiling(), 3), "6 4");
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

}  // namespace report

}  // namespace palign::bench
