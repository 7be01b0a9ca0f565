// The bench runner (see runner.h): data, methods, metrics.
#include "palign/bench/runner.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "methods/methods.h"
#include "palign/base/error.h"
#include "palign/base/json.h"
#include "palign/base/progress.h"
#include "palign/base/timer.h"
#include "palign/bench/candidates.h"
#include "palign/bench/metrics.h"
#include "palign/bench/rng.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "palign/scoring/feature_cache.h"
#include "palign/scoring/fortunes.h"
#include "palign/scoring/grader_set.h"

namespace palign::bench {

using nlohmann::json;

namespace {

// The pool of a prompt: N samples drawn in one batch, with the batch's time shared equally.
std::vector<Response> sample_pool(const runtime::Model& model, const runtime::Tokenizer& tok, const std::string& prompt,
                                  const BenchOptions& o, uint64_t seed) {
  runtime::GenerateOptions g;
  g.max_new_tokens = o.generation.max_new_tokens;
  g.sampling = {.temperature = o.generation.temperature, .top_p = o.generation.top_p, .seed = seed};
  if (tok.eos_id()) g.stop_ids = {*tok.eos_id()};
  const auto ids32 = tok.encode(prompt, /*add_special=*/true);
  const auto t0 = Clock::now();
  auto results =
      runtime::generate(model, &tok, std::vector<int64_t>(ids32.begin(), ids32.end()), g, o.candidates_per_prompt);
  const double share = seconds_since(t0) / static_cast<double>(results.size());
  std::vector<Response> pool;
  for (auto& r : results) {
    const auto n = static_cast<int64_t>(r.ids.size());
    pool.push_back({std::move(r.text), n, std::max<int64_t>(1, n), share});
  }
  return pool;
}

}  // namespace

namespace {
// The predictor every other is compared with, paired (one-size-fits-all Bradley–Terry).
constexpr const char* kBaselinePredictor = "bt";
// Labels as sharp as PersonalLLM's: with unit-norm weights, β = 4 puts the best possible predictor near 85% on pairs
// of candidates to one prompt (β = 1 leaves it near 65%, too noisy to tell methods apart).
constexpr double kBenchBeta = 4.0;
}  // namespace

BenchOptions BenchOptions::quick() {
  BenchOptions o;
  o.mode = "quick";
  o.n_prompts = 32;
  o.candidates_per_prompt = 8;
  o.dataset.n_train_prompts = 24;
  o.dataset.test_pairs_per_user = 32;
  o.dataset.pairs_per_dimension = 512;
  o.dataset.population.n_users = 48;
  o.dataset.unseen_share = 0.25;
  o.dataset.population.beta = kBenchBeta;
  return o;
}

BenchOptions BenchOptions::full() {
  BenchOptions o;
  o.mode = "full";
  o.n_prompts = 128;
  o.candidates_per_prompt = 16;
  o.dataset.n_train_prompts = 96;
  o.dataset.test_pairs_per_user = 64;
  o.dataset.pairs_per_dimension = 4096;  // thousands per dimension, as labelled data of one grader would come
  o.dataset.population.n_users = 200;
  o.dataset.unseen_share = 0.25;
  o.dataset.population.beta = kBenchBeta;
  return o;
}

std::string BenchOptions::validate() const {
  if (n_prompts <= dataset.n_train_prompts) return "n_prompts must exceed the training prompts";
  if (candidates_per_prompt < 2) return "candidates_per_prompt must be >= 2";
  if (generation.max_new_tokens < 1) return "max_new_tokens must be >= 1";
  return dataset.validate();
}

namespace {

// The methods a run measures, in registry order: the chosen ones (all default ones when none are) and their own
// bases (MethodInfo::own_base), plus "sample" and "oracle" when any generates (the base and the ceiling of the
// generation figures). Unknown names fail before any work.
std::vector<const MethodInfo*> chosen_methods(const std::vector<std::string>& requested) {
  std::vector<std::string> names = expand_method_names(requested);
  if (names.empty())
    for (const auto& m : method_registry())
      if (m.in_default) names.push_back(m.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  bool any_generates = false;
  for (const auto& name : names) any_generates |= find_method(name).make()->generates();
  const std::vector<std::string> chosen = names;
  for (const auto& name : chosen)  // each method's own base runs with it
    if (const std::string& own = find_method(name).own_base;
        !own.empty() && std::find(names.begin(), names.end(), own) == names.end())
      names.push_back(own);
  if (any_generates)
    for (const char* required : {"sample", "oracle"})
      if (std::find(names.begin(), names.end(), required) == names.end()) names.push_back(required);
  std::vector<const MethodInfo*> methods;
  for (const auto& m : method_registry())
    if (std::find(names.begin(), names.end(), m.name) != names.end()) methods.push_back(&m);
  return methods;
}

// One run, in phases: data (the constructor), then per method fit and predict (accuracy) and generate (utility),
// then summarise. Runs in inference mode; the model loads outside it (see run_bench).
class BenchRun {
 public:
  BenchRun(const BenchOptions& options, const runtime::Model& model)
      : options_(options),
        seed_(options.seed),
        model_(model),
        tok_(runtime::Tokenizer::from_dir(options.model_dir)),
        records_(scoring::read_fortunes({.source_dir = options.fortunes_dir})),
        graders_(scoring::GraderSet::build(records_)),
        prompts_(fortune_prompts(
            records_, {.split = "test", .n_prompts = options.n_prompts, .seed = derive_seed(seed_, "prompts")})),
        data_(build_dataset_from_pools()),
        ctx_(model, tok_, options.generation, seed_, "", options.features) {
    n_users_ = static_cast<int64_t>(data_.population.users.size());
    n_train_prompts_ = data_.n_train_prompts();
    n_prompts_ = static_cast<int64_t>(prompts_.size());
    n_test_prompts_ = n_prompts_ - n_train_prompts_;
    prepare_truth();
    prepare_groups();
    for (int64_t p = n_train_prompts_; p < n_prompts_; ++p) ctx_.set_pool(prompts_[p], pools_[p]);
    prepare_elicitation();
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& item : data_.items) texts.emplace_back(prompts_[item.prompt], item.response);
    for (int64_t p = 0; p < n_prompts_; ++p) texts.emplace_back(prompts_[p], "");
    ctx_.precompute_features(texts);
    fit_base_.dimensions = data_.dimensions;
    for (const auto& pairs : data_.dimension_pairs) {
      fit_base_.dimension_pairs.emplace_back();
      for (const auto& p : pairs) fit_base_.dimension_pairs.back().push_back(pair_text(p));
    }
    per_user_.resize(static_cast<size_t>(n_users_));
  }

  // The progress bar's units of work for these methods.
  int64_t work(const std::vector<const MethodInfo*>& methods) const {
    int64_t w = 0;
    for (const auto* info : methods)
      w += static_cast<int64_t>(data_.options.budgets.size()) * n_users_ + (info->make()->generates() ? n_users_ : 0);
    return w;
  }

  // Fit at every budget with the seen users' first-b pairs, predict the held-out pairs (seen users at each budget,
  // unseen users with the model fitted at the largest one), then generate for every user and test prompt.
  void measure(const MethodInfo& info, ProgressBar& bar) {
    auto method = info.make();
    ctx_.set_truth(info.oracle ? &truth_ : nullptr);
    const auto shared_before = static_cast<std::ptrdiff_t>(ctx_.shared_made().size());
    const Timing t = fit_and_predict(info, *method, bar);
    if (method->generates()) generate(info, *method, bar);
    ctx_.set_truth(nullptr);
    results_.methods.push_back(
        {.name = info.name,
         .description = info.description,
         .oracle = info.oracle,
         .predicts = method->predicts(),
         .generates = method->generates(),
         .fit_seconds = t.fit_seconds,
         .predict_ms_per_pair = t.n_predictions ? 1000.0 * t.predict_seconds / static_cast<double>(t.n_predictions)
                                                : std::numeric_limits<double>::quiet_NaN(),
         // What this method's fit made for the run's methods to share (e.g. the DPO experts, the user model).
         .shared_made =
             std::vector<std::string>(ctx_.shared_made().begin() + shared_before, ctx_.shared_made().end())});
  }

  // Generation figures against the base method, per-user rows, the ceiling and the config.
  BenchResults summarise(const std::vector<const MethodInfo*>& methods, double wall_seconds) {
    summarise_accuracy(methods);
    summarise_curves(methods);
    summarise_calibration(methods);
    compare_elicitation();
    summarise_generation(methods);
    for (int64_t u = 0; u < n_users_; ++u) {
      UserRow& row = per_user_[u];
      row.user = data_.population.users[u].id;
      row.group = seen_[u] ? "seen" : "unseen";
      row.alignment = alignment_[u];
      row.contrarian = data_.population.users[u].contrarian;
      row.minority = minority_[u];
    }
    results_.per_user = per_user_;
    results_.config = config();
    results_.wall_seconds = wall_seconds;
    return results_;
  }

 private:
  struct Timing {
    double fit_seconds = 0, predict_seconds = 0;
    int64_t n_predictions = 0;
  };

  // The candidate pool of every prompt (sampled from the policy), then the dataset built on them.
  BenchDataset build_dataset_from_pools() {
    {
      ProgressBar bar("bench: sampling", static_cast<int64_t>(prompts_.size()), options_.progress);
      for (size_t p = 0; p < prompts_.size(); ++p) {
        pools_.push_back(
            sample_pool(model_, tok_, prompts_[p], options_, derive_seed(seed_, "pool." + std::to_string(p))));
        bar.update(static_cast<int64_t>(p + 1));
      }
      bar.finish();
    }
    std::vector<std::vector<std::string>> candidate_texts;
    for (const auto& pool : pools_) {
      candidate_texts.emplace_back();
      for (const auto& r : pool) candidate_texts.back().push_back(r.text);
    }
    DatasetOptions dataset_options = options_.dataset;
    dataset_options.seed = derive_seed(seed_, "dataset");
    dataset_options.population.seed = derive_seed(seed_, "population");
    BenchDataset data = build_dataset(graders_, prompts_, candidate_texts, dataset_options);
    if (!options_.data_out.empty()) data.write(options_.data_out, graders_);
    return data;
  }

  // The hidden utilities (each user's, and the population's mean user's) and each user's alignment with the
  // population: cos(w_u, mean w).
  void prepare_truth() {
    for (int64_t u = 0; u < n_users_; ++u) user_index_[data_.population.users[u].id] = u;
    std::vector<double> mean_w(static_cast<size_t>(data_.population.n_dims), 0.0);
    for (const auto& user : data_.population.users)
      for (size_t k = 0; k < mean_w.size(); ++k) mean_w[k] += user.weights[k] / static_cast<double>(n_users_);
    truth_.beta = data_.population.options.beta;
    truth_.utility = [this](const std::string& user_id, const std::string& prompt, const std::string& response) {
      return utility(data_.population.users[user_index_.at(user_id)], z_of(prompt + response));
    };
    mean_user_ = SimulatedUser{"population", mean_w, 0, false};
    truth_.population_utility = [this](const std::string& prompt, const std::string& response) {
      return utility(mean_user_, z_of(prompt + response));
    };
    truth_.z = [this](const std::string& prompt, const std::string& response) { return z_of(prompt + response); };
    for (const auto& user : data_.population.users) {
      double dot = 0.0, uu = 0.0, mm = 0.0;
      for (size_t k = 0; k < mean_w.size(); ++k)
        dot += user.weights[k] * mean_w[k], uu += user.weights[k] * user.weights[k], mm += mean_w[k] * mean_w[k];
      alignment_.push_back(uu > 0 && mm > 0 ? dot / std::sqrt(uu * mm) : 0.0);
    }
  }

  // The simulated users answer questions about the training prompts' candidates (MethodContext::ask), each answer
  // drawn as a training label is, from a stream of the run's seed, the user and the question's key.
  void prepare_elicitation() {
    std::vector<MethodContext::ElicitationPrompt> prompts;
    for (int64_t p = 0; p < n_train_prompts_; ++p) {
      prompts.push_back({prompts_[p], {}});
      for (int64_t item : data_.candidates[p]) prompts.back().candidates.push_back(data_.items[item].response);
    }
    ctx_.set_elicitation(std::move(prompts), [this](const std::string& user_id, const std::string& prompt,
                                                    const std::string& a, const std::string& b,
                                                    const std::string& key) {
      const auto it = user_index_.find(user_id);
      PALIGN_CHECK(it != user_index_.end(), ErrorCode::kInvalidArgument, "[bench.ask] unknown user '", user_id, "'");
      const SimulatedUser& user = data_.population.users[it->second];
      const double p = sigmoid(truth_.beta * (utility(user, z_of(prompt + a)) - utility(user, z_of(prompt + b))));
      Rng rng(derive_seed(seed_, "ask." + user_id + "." + key));
      return rng.bernoulli(p);
    });
  }

  // Seen and unseen users, and the pre-declared minority (contrarians and the least-aligned decile) within each.
  void prepare_groups() {
    seen_.assign(static_cast<size_t>(n_users_), false);
    for (int64_t u : data_.seen) seen_[u] = true;
    std::vector<double> sorted = alignment_;
    std::sort(sorted.begin(), sorted.end());
    const double cut = sorted[std::max<size_t>(1, sorted.size() / 10) - 1];
    minority_.assign(static_cast<size_t>(n_users_), false);
    for (int64_t u = 0; u < n_users_; ++u) minority_[u] = data_.population.users[u].contrarian || alignment_[u] <= cut;
    for (int64_t u = 0; u < n_users_; ++u) {
      const std::string group = seen_[u] ? "seen" : "unseen";
      auto& rows = row_of_[group];
      rows.emplace(u, static_cast<int64_t>(rows.size()));
      if (!minority_[u]) continue;
      auto& minority_rows = row_of_[group + ".minority"];
      minority_rows.emplace(u, static_cast<int64_t>(minority_rows.size()));
    }
  }

  const std::vector<double>& z_of(const std::string& text) {
    auto it = z_cache_.find(text);
    if (it == z_cache_.end()) it = z_cache_.emplace(text, graders_.z(text)).first;
    return it->second;
  }

  PairText pair_text(const LabeledPair& p) const {
    return PairText{prompts_[p.prompt], data_.items[p.chosen].response, data_.items[p.rejected].response};
  }

  UserData user_data(int64_t u, int64_t budget) const {
    UserData ud{data_.population.users[u].id, static_cast<bool>(seen_[u]), {}};
    for (int64_t i = 0; i < budget; ++i) ud.pairs.push_back(pair_text(data_.train_pairs[u][i]));
    return ud;
  }

  // The accuracy grids of one method at one budget and group: users of the group × test prompts.
  struct AccuracyGrids {
    Grid credit, expected;
    Grid utility;  // MethodInfo::curve: the best-of-N utility by the method's predictions (utility_of)
  };

  // Held-out accuracy, added to the user's row of the grids (and of the minority's, for a user in it); each test pair
  // is shown in an order fixed per user, the same for every method. A prediction earns 1 when it orders the pair as
  // the label does (0.5 for a tie) and, as expected accuracy, the true probability of the order it predicts.
  // Returns the user's accuracy. calibration: when given, each prediction (P(first ≻ second), the first chosen) is
  // added to it.
  double accuracy_of(Method& method, const UserData& ud, int64_t u, std::map<std::string, AccuracyGrids>& grids,
                     std::vector<std::pair<double, bool>>* calibration = nullptr) {
    Rng order(derive_seed(seed_, "order." + ud.id));
    const std::string group = seen_[u] ? "seen" : "unseen";
    std::vector<std::pair<AccuracyGrids*, int64_t>> rows = {{&grid_of(grids, group), row_of_.at(group).at(u)}};
    if (minority_[u]) rows.emplace_back(&grid_of(grids, group + ".minority"), row_of_.at(group + ".minority").at(u));
    double total = 0.0;
    for (const auto& lp : data_.test_pairs[u]) {
      const PairText p = pair_text(lp);
      const bool chosen_first = order.bernoulli(0.5);
      const double prob = chosen_first ? method.predict(ud, p.prompt, p.chosen, p.rejected, ctx_)
                                       : method.predict(ud, p.prompt, p.rejected, p.chosen, ctx_);
      const bool says_chosen = (prob > 0.5) == chosen_first;
      const double credit = prob == 0.5 ? 0.5 : (says_chosen ? 1.0 : 0.0);
      const double q = sigmoid(truth_.beta * (data_.utility(u, lp.chosen) - data_.utility(u, lp.rejected)));
      const double expected = prob == 0.5 ? 0.5 : (says_chosen ? q : 1.0 - q);
      if (calibration) calibration->emplace_back(prob, chosen_first);
      for (auto& [g, row] : rows) {
        g->credit.add(row, lp.prompt - n_train_prompts_, credit);
        g->expected.add(row, lp.prompt - n_train_prompts_, expected);
      }
      total += credit;
    }
    return total / static_cast<double>(data_.test_pairs[u].size());
  }

  // The learning curve of generation: at each test prompt, the pooled sample the method predicts the user prefers
  // most to the pool's first (P(c ≻ first), the first scoring 1/2; the first of ties), scored by the user's hidden
  // utility, added to the user's row of the utility grids. For a reward model this is its best-of-N at this budget.
  void utility_of(Method& method, const UserData& ud, int64_t u, std::map<std::string, AccuracyGrids>& grids) {
    const std::string group = seen_[u] ? "seen" : "unseen";
    std::vector<std::pair<AccuracyGrids*, int64_t>> rows = {{&grid_of(grids, group), row_of_.at(group).at(u)}};
    if (minority_[u]) rows.emplace_back(&grid_of(grids, group + ".minority"), row_of_.at(group + ".minority").at(u));
    for (int64_t p = n_train_prompts_; p < n_prompts_; ++p) {
      const std::vector<Response>& pool = pools_[p];
      size_t best = 0;
      double best_prob = 0.5;
      for (size_t i = 1; i < pool.size(); ++i) {
        const double prob = method.predict(ud, prompts_[p], pool[i].text, pool[0].text, ctx_);
        if (prob > best_prob) best = i, best_prob = prob;
      }
      const double value = truth_.utility(ud.id, prompts_[p], pool[best].text);
      for (auto& [g, row] : rows) g->utility.add(row, p - n_train_prompts_, value);
    }
  }

  // The group's grids in grids, made empty (its users × the test prompts) on first use.
  AccuracyGrids& grid_of(std::map<std::string, AccuracyGrids>& grids, const std::string& group) const {
    auto it = grids.find(group);
    if (it == grids.end()) {
      const auto rows = static_cast<int64_t>(row_of_.at(group).size());
      it = grids
               .emplace(group, AccuracyGrids{Grid(rows, n_test_prompts_), Grid(rows, n_test_prompts_),
                                             Grid(rows, n_test_prompts_)})
               .first;
    }
    return it->second;
  }

  Timing fit_and_predict(const MethodInfo& info, Method& method, ProgressBar& bar) {
    const std::vector<int64_t>& budgets = data_.options.budgets;
    const int64_t max_budget = data_.max_budget();
    Timing t;
    auto& grids = accuracy_grids_[info.name];  // [budget index][group]
    grids.assign(budgets.size(), {});
    for (size_t bi = 0; bi < budgets.size(); ++bi) {
      const int64_t budget = budgets[bi];
      FitData fit = fit_base_;
      fit.budget = budget;
      for (int64_t u : data_.seen) fit.users.push_back(user_data(u, budget));
      auto t0 = Clock::now();
      // A method that only generates is used at the largest budget alone.
      if (method.predicts() || budget == max_budget) method.fit(fit, ctx_);
      t.fit_seconds += seconds_since(t0);
      if (!method.predicts()) {
        done_ += n_users_;
        bar.update(done_, info.name);
        continue;
      }
      t0 = Clock::now();
      auto* calibration = budget == max_budget ? &calibration_[info.name] : nullptr;
      for (size_t i = 0; i < data_.seen.size(); ++i) {
        const int64_t u = data_.seen[i];
        const double acc = accuracy_of(method, fit.users[i], u, grids[bi], calibration);
        if (budget == max_budget) per_user_[u].accuracy[info.name] = acc;
        if (info.curve) utility_of(method, fit.users[i], u, grids[bi]);
        bar.update(++done_, info.name);
      }
      t.n_predictions += static_cast<int64_t>(data_.seen.size()) * data_.options.test_pairs_per_user;
      // Unseen users meet the model fitted at the largest budget, bringing their own first-b pairs.
      if (budget == max_budget) {
        for (size_t bj = 0; bj < budgets.size(); ++bj)
          for (int64_t u : data_.unseen) {
            const UserData ud = user_data(u, budgets[bj]);
            const double acc = accuracy_of(method, ud, u, grids[bj], budgets[bj] == max_budget ? calibration : nullptr);
            if (budgets[bj] == max_budget) per_user_[u].accuracy[info.name] = acc;
            if (info.curve) utility_of(method, ud, u, grids[bj]);
          }
        t.n_predictions +=
            static_cast<int64_t>(budgets.size() * data_.unseen.size()) * data_.options.test_pairs_per_user;
      }
      done_ += static_cast<int64_t>(data_.unseen.size());
      bar.update(done_, info.name);
      t.predict_seconds += seconds_since(t0);
    }
    if (!method.predicts()) accuracy_grids_.erase(info.name);
    diagnose_dimensions(info, method);
    return t;
  }

  // A method with per-dimension heads (as last fitted): each head's accuracy on every pair of candidates at the test
  // prompts, labelled by its grader (ties left out), and its correlation with the grader over the test candidates.
  // The first such method also gets the heads' learning curve: the same heads (fit_feature_heads) fitted on the
  // first 64, 256, 1024, … of each dimension's pairs, as rows with fewer train pairs.
  void diagnose_dimensions(const MethodInfo& info, Method& method) {
    const auto& test_items = [&]() -> const std::vector<int64_t>& {
      if (test_items_.empty())
        for (int64_t p = n_train_prompts_; p < n_prompts_; ++p)
          for (int64_t item : data_.candidates[p]) test_items_.push_back(item);
      return test_items_;
    }();
    std::vector<std::vector<double>> scores;  // [item][dimension]
    for (int64_t item : test_items) {
      scores.push_back(method.dimension_scores(prompts_[data_.items[item].prompt], data_.items[item].response, ctx_));
      if (scores.back().size() != data_.dimensions.size()) return;  // no heads (or not one per dimension)
    }
    if (!curve_done_) {
      curve_done_ = true;
      for (size_t n = 64; n < static_cast<size_t>(data_.options.pairs_per_dimension); n *= 4) {
        const auto heads = fit_feature_heads(fit_base_.dimension_pairs, ctx_, n);
        std::vector<std::vector<double>> at_n;
        for (int64_t item : test_items) {
          at_n.emplace_back();
          for (const auto& head : heads)
            at_n.back().push_back(
                head.score(ctx_.features(prompts_[data_.items[item].prompt], data_.items[item].response)));
        }
        add_dimension_rows(info.name, at_n, static_cast<int64_t>(n));
      }
    }
    add_dimension_rows(info.name, scores, -1);
  }

  // Rows of the per-dimension table from heads' scores [test item][dimension]; train_pairs < 0: all of each
  // dimension's pairs.
  void add_dimension_rows(const std::string& method, const std::vector<std::vector<double>>& scores,
                          int64_t train_pairs) {
    const std::vector<int64_t>& test_items = test_items_;
    std::map<int64_t, size_t> row;  // item -> its row in scores
    for (size_t i = 0; i < test_items.size(); ++i) row[test_items[i]] = i;
    for (size_t k = 0; k < data_.dimensions.size(); ++k) {
      int64_t right = 0, pairs = 0;
      for (int64_t p = n_train_prompts_; p < n_prompts_; ++p) {
        const auto& cands = data_.candidates[p];
        for (size_t a = 0; a < cands.size(); ++a)
          for (size_t b = a + 1; b < cands.size(); ++b) {
            const double dz = data_.items[cands[a]].z[k] - data_.items[cands[b]].z[k];
            if (std::abs(dz) < 1e-12) continue;
            const double ds = scores[row.at(cands[a])][k] - scores[row.at(cands[b])][k];
            right += (ds > 0) == (dz > 0) && ds != 0;
            ++pairs;
          }
      }
      std::vector<double> x, y;
      for (size_t i = 0; i < test_items.size(); ++i)
        x.push_back(scores[i][k]), y.push_back(data_.items[test_items[i]].z[k]);
      DimensionRow d;
      d.method = method;
      d.dimension = data_.dimensions[k];
      d.train_pairs = train_pairs >= 0 ? std::min<int64_t>(train_pairs, std::ssize(data_.dimension_pairs[k]))
                                       : static_cast<int64_t>(data_.dimension_pairs[k].size());
      if (pairs > 0) d.accuracy = figure_of(wilson_interval(right, pairs));
      d.correlation = pearson(x, y);
      results_.dimensions.push_back(std::move(d));
    }
  }

  // Accuracy rows of every predicting method: accuracy and expected accuracy over users × test prompts, and the
  // paired difference in expected accuracy from the baseline predictor (when it ran).
  void summarise_accuracy(const std::vector<const MethodInfo*>& methods) {
    const auto base = accuracy_grids_.find(kBaselinePredictor);
    const std::vector<int64_t>& budgets = data_.options.budgets;
    for (const auto* info : methods) {
      const auto it = accuracy_grids_.find(info->name);
      if (it == accuracy_grids_.end()) continue;
      for (size_t bi = 0; bi < budgets.size(); ++bi)
        for (const char* group : {"seen", "unseen", "seen.minority", "unseen.minority"}) {
          const auto g = it->second[bi].find(group);
          if (g == it->second[bi].end() || g->second.credit.rows == 0) continue;
          const uint64_t s = derive_seed(seed_, "boot.acc." + info->name + std::to_string(bi) + group);
          auto first = [](const std::vector<double>& m) { return m[0]; };
          AccuracyRow row;
          row.method = info->name;
          row.group = group;
          row.budget = budgets[bi];
          row.mean = figure_of(bootstrap_grids({&g->second.credit}, first, s));
          row.expected = figure_of(bootstrap_grids({&g->second.expected}, first, s));
          if (base != accuracy_grids_.end() && info->name != kBaselinePredictor) {
            const auto b = base->second[bi].find(group);
            if (b != base->second[bi].end())
              row.vs_base = figure_of(bootstrap_grids(
                  {&g->second.expected, &b->second.expected}, [](const std::vector<double>& m) { return m[0] - m[1]; },
                  s));
          }
          // What the user's own pairs add: the same method at b=0 on the same users and items.
          if (bi > 0 && budgets[0] == 0) {
            const auto z = it->second[0].find(group);
            if (z != it->second[0].end())
              row.vs_b0 = figure_of(bootstrap_grids(
                  {&g->second.expected, &z->second.expected}, [](const std::vector<double>& m) { return m[0] - m[1]; },
                  s));
          }
          results_.accuracy.push_back(std::move(row));
        }
    }
  }

  // The curve rows of methods with MethodInfo::curve: utility per budget and group, and its paired gain over b=0.
  void summarise_curves(const std::vector<const MethodInfo*>& methods) {
    const std::vector<int64_t>& budgets = data_.options.budgets;
    for (const auto* info : methods) {
      const auto it = accuracy_grids_.find(info->name);
      if (!info->curve || it == accuracy_grids_.end()) continue;
      for (size_t bi = 0; bi < budgets.size(); ++bi)
        for (const char* group : {"seen", "unseen", "seen.minority", "unseen.minority"}) {
          const auto g = it->second[bi].find(group);
          if (g == it->second[bi].end() || std::isnan(g->second.utility.mean())) continue;
          const uint64_t s = derive_seed(seed_, "boot.curve." + info->name + std::to_string(bi) + group);
          CurveRow row{.method = info->name, .group = group, .budget = budgets[bi]};
          row.utility = figure_of(bootstrap_grids(
              {&g->second.utility}, [](const std::vector<double>& m) { return m[0]; }, s));
          if (bi > 0 && budgets[0] == 0)
            if (const auto z = it->second[0].find(group); z != it->second[0].end())
              row.vs_b0 = figure_of(bootstrap_grids(
                  {&g->second.utility, &z->second.utility}, [](const std::vector<double>& m) { return m[0] - m[1]; },
                  s));
          results_.curves.push_back(std::move(row));
        }
    }
  }

  // Each predicting method's reliability table: its predictions at the largest budget in ten bins of P(first ≻
  // second), against the share of them whose first response was chosen.
  void summarise_calibration(const std::vector<const MethodInfo*>& methods) {
    for (const auto* info : methods) {
      const auto it = calibration_.find(info->name);
      if (it == calibration_.end() || it->second.empty()) continue;
      std::vector<double> predicted(10, 0.0), observed(10, 0.0);
      std::vector<int64_t> n(10, 0);
      for (const auto& [p, first] : it->second) {
        const auto bin =
            static_cast<size_t>(std::clamp(static_cast<int64_t>(std::floor(p * 10.0)), int64_t{0}, int64_t{9}));
        predicted[bin] += p, observed[bin] += first ? 1.0 : 0.0, ++n[bin];
      }
      for (size_t bin = 0; bin < 10; ++bin)
        if (n[bin] > 0)
          results_.calibration.push_back({.method = info->name,
                                          .bin = static_cast<int64_t>(bin),
                                          .n = n[bin],
                                          .predicted = predicted[bin] / static_cast<double>(n[bin]),
                                          .observed = observed[bin] / static_cast<double>(n[bin])});
    }
  }

  // The elicitation goal: active queries at 16 events against random ones (online) at 64, in expected accuracy on the
  // same users and items, when both ran at those budgets; and the same for their twins on the true scores.
  void compare_elicitation() {
    compare_elicitation("active", "online");
    compare_elicitation("active_true", "online_true");
  }
  void compare_elicitation(const std::string& active_name, const std::string& online_name) {
    const std::vector<int64_t>& budgets = data_.options.budgets;
    const auto active = accuracy_grids_.find(active_name), online = accuracy_grids_.find(online_name);
    const auto b16 = std::find(budgets.begin(), budgets.end(), 16), b64 = std::find(budgets.begin(), budgets.end(), 64);
    if (active == accuracy_grids_.end() || online == accuracy_grids_.end() || b16 == budgets.end() ||
        b64 == budgets.end())
      return;
    for (const char* group : {"seen", "unseen"}) {
      const auto a = active->second[b16 - budgets.begin()].find(group);
      const auto o = online->second[b64 - budgets.begin()].find(group);
      if (a == active->second[b16 - budgets.begin()].end() || o == online->second[b64 - budgets.begin()].end())
        continue;
      const uint64_t s = derive_seed(seed_, "boot.elicitation." + active_name + group);
      results_.comparisons.push_back({.name = active_name + "@16 - " + online_name + "@64",
                                      .group = group,
                                      .description = "expected accuracy of " + active_name +
                                                     " (active elicitation) after 16 events minus " + online_name +
                                                     " (random queries) after 64",
                                      .difference = figure_of(bootstrap_grids(
                                          {&a->second.expected, &o->second.expected},
                                          [](const std::vector<double>& m) { return m[0] - m[1]; }, s))});
    }
  }

  // Every user, every test prompt, with the user's pairs at the largest budget (the model as fitted last, at that
  // budget); every user of a prompt at once, so that a method may batch across users.
  void generate(const MethodInfo& info, Method& method, ProgressBar& bar) {
    auto& utils = utilities_[info.name];
    utils.assign(static_cast<size_t>(n_users_ * n_test_prompts_), 0.0);  // [u * n_test + t]
    double seconds = 0.0;
    int64_t tokens = 0, passes = 0;
    std::vector<UserData> users;
    for (int64_t u = 0; u < n_users_; ++u) users.push_back(user_data(u, data_.max_budget()));
    for (int64_t p = n_train_prompts_; p < n_prompts_; ++p) {
      const auto t0 = Clock::now();
      const std::vector<Response> rs = method.generate_batch(users, prompts_[p], ctx_);
      seconds += seconds_since(t0);
      PALIGN_CHECK(static_cast<int64_t>(rs.size()) == n_users_, ErrorCode::kInternal, "[bench] method ", info.name,
                   " gave ", rs.size(), " responses for ", n_users_, " users");
      for (int64_t u = 0; u < n_users_; ++u) {
        const Response& r = rs[u];
        seconds += r.seconds;
        tokens += r.tokens;
        passes += r.forward_passes;
        utils[u * n_test_prompts_ + (p - n_train_prompts_)] = truth_.utility(users[u].id, prompts_[p], r.text);
      }
      bar.update(done_ + (p - n_train_prompts_ + 1) * n_users_ / n_test_prompts_, info.name);
    }
    done_ += n_users_;
    for (int64_t u = 0; u < n_users_; ++u) {
      double sum = 0.0;
      for (int64_t t = 0; t < n_test_prompts_; ++t) sum += utils[u * n_test_prompts_ + t];
      per_user_[u].utility[info.name] = sum / static_cast<double>(n_test_prompts_);
    }
    const auto n_responses = static_cast<double>(utils.size());
    GenerationRow& cost = costs_[info.name];
    cost.wall_ms = 1000.0 * seconds / n_responses;
    cost.tokens = static_cast<double>(tokens) / n_responses;
    cost.forward_passes = static_cast<double>(passes) / n_responses;
  }

  // Generation rows: utility over users × test prompts, and against the base method (sample) on the same cells: the
  // paired difference, the win rate and the share of the oracle's gain, each with a two-way bootstrap interval.
  void summarise_generation(const std::vector<const MethodInfo*>& methods) {
    if (utilities_.empty()) return;
    auto grid_of = [&](const std::vector<double>& utils) {
      Grid g(n_users_, n_test_prompts_);
      for (int64_t u = 0; u < n_users_; ++u)
        for (int64_t t = 0; t < n_test_prompts_; ++t) g.add(u, t, utils[u * n_test_prompts_ + t]);
      return g;
    };
    const Grid base = grid_of(utilities_.at("sample")), oracle = grid_of(utilities_.at("oracle"));
    const auto& base_utils = utilities_.at("sample");
    for (const auto* info : methods) {
      auto it = utilities_.find(info->name);
      if (it == utilities_.end()) continue;
      const uint64_t s = derive_seed(seed_, "boot.gen." + info->name);
      const Grid grid = grid_of(it->second);
      GenerationRow row = costs_.at(info->name);
      row.method = info->name;
      row.utility = figure_of(bootstrap_grids(
          {&grid}, [](const std::vector<double>& m) { return m[0]; }, s));
      if (info->name != "sample") {
        Grid wins(n_users_, n_test_prompts_);
        for (int64_t u = 0; u < n_users_; ++u)
          for (int64_t t = 0; t < n_test_prompts_; ++t) {
            const double a = it->second[u * n_test_prompts_ + t], b = base_utils[u * n_test_prompts_ + t];
            wins.add(u, t, a > b ? 1.0 : a < b ? 0.0 : 0.5);
          }
        row.win_rate = figure_of(bootstrap_grids(
            {&wins}, [](const std::vector<double>& m) { return m[0]; }, s));
        row.vs_base = figure_of(bootstrap_grids(
            {&grid, &base}, [](const std::vector<double>& m) { return m[0] - m[1]; }, s));
        row.oracle_gain_share = figure_of(bootstrap_grids(
            {&grid, &base, &oracle}, [](const std::vector<double>& m) { return oracle_gain_share(m[0], m[1], m[2]); },
            s));
      }
      if (const auto own = utilities_.find(info->own_base); !info->own_base.empty() && own != utilities_.end()) {
        const Grid own_grid = grid_of(own->second);
        row.own_base = info->own_base;
        row.vs_own_base = figure_of(bootstrap_grids(
            {&grid, &own_grid}, [](const std::vector<double>& m) { return m[0] - m[1]; }, s));
      }
      results_.generation.push_back(std::move(row));
    }
  }

  json config() const {
    // What the best possible predictor scores on these noisy labels, on average: E[max(p, 1 − p)].
    double ceiling = 0.0;
    int64_t n_test = 0;
    for (int64_t u = 0; u < n_users_; ++u)
      for (const auto& lp : data_.test_pairs[u]) {
        const double p = sigmoid(truth_.beta * (data_.utility(u, lp.chosen) - data_.utility(u, lp.rejected)));
        ceiling += std::max(p, 1.0 - p);
        ++n_test;
      }
    return {{"mode", options_.mode},
            {"seed", seed_},
            {"budgets", data_.options.budgets},
            {"n_users", n_users_},
            {"n_seen", data_.seen.size()},
            {"n_unseen", data_.unseen.size()},
            {"n_train_prompts", n_train_prompts_},
            {"n_test_prompts", n_test_prompts_},
            {"candidates_per_prompt", options_.candidates_per_prompt},
            {"best_of_n", options_.candidates_per_prompt},
            {"test_pairs_per_user", data_.options.test_pairs_per_user},
            {"pairs_per_dimension", data_.options.pairs_per_dimension},
            {"beta", truth_.beta},
            {"max_new_tokens", options_.generation.max_new_tokens},
            {"temperature", options_.generation.temperature},
            {"top_p", options_.generation.top_p},
            {"model", options_.model_dir.string()},
            {"dimensions", data_.dimensions},
            {"features", ctx_.feature_spec().text()},
            {"base_method", "sample"},
            {"baseline_predictor", kBaselinePredictor},
            {"minority", "contrarian users and the least-aligned decile of users (cosine with the population mean)"},
            {"n_minority", std::count(minority_.begin(), minority_.end(), true)},
            {"intervals", "95% two-way percentile bootstrap over users and test prompts; differences paired"},
            {"expected_ceiling_accuracy", ceiling / static_cast<double>(std::max<int64_t>(1, n_test))}};
  }

  const BenchOptions& options_;
  const uint64_t seed_;
  const runtime::Model& model_;
  const runtime::Tokenizer tok_;
  const std::vector<scoring::FortuneRecord> records_;
  const scoring::GraderSet graders_;
  const std::vector<std::string> prompts_;
  std::vector<std::vector<Response>> pools_;  // filled while data_ is built
  const BenchDataset data_;
  MethodContext ctx_;
  bool curve_done_ = false;  // the per-dimension heads' learning curve (diagnose_dimensions)
  int64_t n_users_ = 0, n_train_prompts_ = 0, n_prompts_ = 0, n_test_prompts_ = 0;
  std::map<std::string, int64_t> user_index_;
  std::map<std::string, std::vector<double>> z_cache_;
  SimulatedUser mean_user_;
  HiddenTruth truth_;
  std::vector<double> alignment_;
  FitData fit_base_;
  int64_t done_ = 0;  // units of work done, for the progress bar
  BenchResults results_;
  std::vector<UserRow> per_user_;
  std::map<std::string, std::vector<double>> utilities_;  // utilities_[method][u * n_test + t]
  std::map<std::string, std::vector<std::map<std::string, AccuracyGrids>>> accuracy_grids_;  // [method][budget][group]
  // [method]: every prediction at the largest budget (seen and unseen users): P(first ≻ second), the first chosen.
  std::map<std::string, std::vector<std::pair<double, bool>>> calibration_;
  std::vector<bool> seen_, minority_;                         // per user
  std::vector<int64_t> test_items_;                           // the candidates at the test prompts
  std::map<std::string, std::map<int64_t, int64_t>> row_of_;  // group -> user -> its row in the group's grids
  std::map<std::string, GenerationRow> costs_;                // the cost fields of each generating method
};

}  // namespace

BenchResults run_bench(const BenchOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[bench] ", problem);
  const std::vector<const MethodInfo*> methods = chosen_methods(options.methods);
  const auto t_start = Clock::now();
  // The model loads outside inference mode, so that methods that train adapters over it (arm) can record
  // gradients through its weights; everything else runs in inference mode.
  auto model = runtime::Model::load(options.model_dir);
  c10::InferenceMode guard;
  BenchRun run(options, *model);
  ProgressBar bar("bench: methods", run.work(methods), options.progress);
  for (const auto* info : methods) run.measure(*info, bar);
  bar.finish();
  return run.summarise(methods, seconds_since(t_start));
}

}  // namespace palign::bench
