// The spread of a bench's headline figures across seeds (see report.h: render_seed_spread).
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "palign/base/error.h"
#include "palign/bench/report.h"
#include "report_internal.h"

namespace palign::bench {

namespace report {

namespace {

// "mean ± sd [min, max]" of the finite values, or "—".
std::string spread_text(const std::vector<double>& xs, int digits) {
  std::vector<double> v;
  for (double x : xs)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty()) return kDash;
  double mean = 0;
  for (double x : v) mean += x / static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean) / std::max<double>(1.0, static_cast<double>(v.size()) - 1.0);
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fixed(mean, digits) + " ± " + fixed(std::sqrt(var), digits) + " [" + fixed(*lo, digits) + ", " +
         fixed(*hi, digits) + "]";
}

// "k+ / m−": in how many runs the paired interval lies above 0, and below.
std::string verdicts(const std::vector<const Figure*>& figures) {
  int above = 0, below = 0, present = 0;
  for (const Figure* f : figures) {
    if (!f || !std::isfinite(f->value)) continue;
    ++present;
    above += f->lo > 0;
    below += f->hi < 0;
  }
  if (present == 0) return kDash;
  return std::to_string(above) + "+ / " + std::to_string(below) + "\xE2\x88\x92 of " + std::to_string(present);
}

}  // namespace

std::string seed_spread(const std::vector<BenchResults>& runs) {
  PALIGN_CHECK(!runs.empty(), ErrorCode::kInvalidArgument, "[bench.report] no runs to compare across seeds");
  std::vector<std::string> names;
  for (const auto& r : runs)
    for (const auto& m : r.methods)
      if (std::find(names.begin(), names.end(), m.name) == names.end()) names.push_back(m.name);
  const BenchResults& first = runs.front();
  const std::string b = std::to_string(first.max_budget());
  std::string seeds;
  for (const auto& r : runs) seeds += (seeds.empty() ? "" : ", ") + config_value(r.config.value("seed", json()));
  std::ostringstream out;
  out << "# palign bench across seeds (" << seeds << ")\n\n"
      << "Per method: mean ± standard deviation across seeds [min, max] of each figure at b=" << b
      << "; \"vs\": in how many seeds the paired 95% interval against " << first.baseline_predictor()
      << " (accuracy) or " << first.base_method()
      << " (utility) lies above 0 (+) or below 0 (\xE2\x88\x92); \"unseen gain over b=0\": the same count "
      << "for the unseen users' paired gain in expected accuracy from b=0 to b=16 (or the largest budget).\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : names) {
    std::vector<double> seen, unseen, minority, utility, share;
    std::vector<const Figure*> seen_vs, minority_vs, utility_vs, unseen_gain;
    for (const auto& r : runs) {
      const int64_t max_b = r.max_budget();
      const AccuracyRow* s = r.find_accuracy(name, max_b, "seen");
      const AccuracyRow* u = r.find_accuracy(name, max_b, "unseen");
      const AccuracyRow* m = r.find_accuracy(name, max_b, "seen.minority");
      seen.push_back(s ? s->mean.value : kNaN);
      unseen.push_back(u ? u->mean.value : kNaN);
      minority.push_back(m ? m->expected.value : kNaN);
      seen_vs.push_back(s ? &s->vs_base : nullptr);
      const int64_t gain_b = gain_budget(r, "unseen");
      const AccuracyRow* ug = gain_b > 0 ? r.find_accuracy(name, gain_b, "unseen") : nullptr;
      unseen_gain.push_back(ug ? &ug->vs_b0 : nullptr);
      minority_vs.push_back(m ? &m->vs_base : nullptr);
      const GenerationRow* g = nullptr;
      for (const auto& row : r.generation)
        if (row.method == name) g = &row;
      utility.push_back(g ? g->utility.value : kNaN);
      share.push_back(g ? g->oracle_gain_share.value : kNaN);
      utility_vs.push_back(g ? &g->vs_base : nullptr);
    }
    rows.push_back({method_label(first, name), spread_text(seen, 3), verdicts(seen_vs), spread_text(unseen, 3),
                    verdicts(unseen_gain), spread_text(minority, 3), verdicts(minority_vs), spread_text(utility, 3),
                    verdicts(utility_vs), spread_text(share, 2)});
  }
  md_table(out,
           {"method", "seen acc.", "vs " + first.baseline_predictor(), "unseen acc.", "unseen gain over b=0",
            "seen minority (exp.)", "vs " + first.baseline_predictor(), "utility", "vs " + first.base_method(),
            "oracle-gain share"},
           rows);
  return out.str();
}

}  // namespace report

std::string render_seed_spread(const std::vector<BenchResults>& runs) { return report::seed_spread(runs); }

}  // namespace palign::bench
