// The bench runner (see runner.h): data, methods, metrics.
#include "palign/bench/runner.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

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
#include "palign/scoring/fortunes.h"
#include "palign/scoring/grader_set.h"

namespace palign::bench {

using nlohmann::json;

namespace {

json estimate_json(const Estimate& e) {
  return {{"value", finite_or_null(e.value)}, {"lo", finite_or_null(e.lo)}, {"hi", finite_or_null(e.hi)}, {"n", e.n}};
}

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

struct UserFigures {
  std::map<std::string, double> accuracy;  // method -> accuracy at the largest budget
  std::map<std::string, double> utility;   // method -> mean utility of its generations
};

}  // namespace

namespace {
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
  o.dataset.pairs_per_dimension = 64;
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
  o.dataset.pairs_per_dimension = 256;
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

std::string run_bench(const BenchOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[bench] ", problem);
  std::vector<std::string> names = expand_method_names(options.methods);  // unknown names fail before any work
  if (names.empty())
    for (const auto& m : method_registry())
      if (m.in_default) names.push_back(m.name);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  bool any_generates = false;
  for (const auto& name : names) any_generates |= find_method(name).make()->generates();
  if (any_generates)
    for (const char* required : {"sample", "oracle"})
      if (std::find(names.begin(), names.end(), required) == names.end()) names.push_back(required);
  // Report order = registry order.
  std::vector<const MethodInfo*> methods;
  for (const auto& m : method_registry())
    if (std::find(names.begin(), names.end(), m.name) != names.end()) methods.push_back(&m);

  const auto t_start = Clock::now();
  // The model loads outside inference mode, so that methods that train adapters over it (arm) can record
  // gradients through its weights; everything else runs in inference mode.
  auto model = runtime::Model::load(options.model_dir);
  c10::InferenceMode guard;
  const uint64_t seed = options.seed;
  DatasetOptions dataset_options = options.dataset;
  dataset_options.seed = derive_seed(seed, "dataset");
  dataset_options.population.seed = derive_seed(seed, "population");

  // Hidden ground truth and data.
  const auto records = scoring::read_fortunes({.source_dir = options.fortunes_dir});
  const scoring::GraderSet graders = scoring::GraderSet::build(records);
  const auto prompts =
      fortune_prompts(records, {.split = "test", .n_prompts = options.n_prompts, .seed = derive_seed(seed, "prompts")});
  const auto tok = runtime::Tokenizer::from_dir(options.model_dir);
  std::vector<std::vector<Response>> pools;
  {
    ProgressBar bar("bench: sampling", static_cast<int64_t>(prompts.size()), options.progress);
    for (size_t p = 0; p < prompts.size(); ++p) {
      pools.push_back(sample_pool(*model, tok, prompts[p], options, derive_seed(seed, "pool." + std::to_string(p))));
      bar.update(static_cast<int64_t>(p + 1));
    }
    bar.finish();
  }
  std::vector<std::vector<std::string>> candidate_texts;
  for (const auto& pool : pools) {
    candidate_texts.emplace_back();
    for (const auto& r : pool) candidate_texts.back().push_back(r.text);
  }
  const BenchDataset data = build_dataset(graders, prompts, candidate_texts, dataset_options);
  if (!options.data_out.empty()) data.write(options.data_out, graders);
  const int64_t n_users = static_cast<int64_t>(data.population.users.size());
  const int64_t n_train_prompts = data.n_train_prompts();
  const auto n_prompts = static_cast<int64_t>(prompts.size());
  const std::vector<int64_t>& budgets = data.options.budgets;
  const int64_t max_budget = data.max_budget();

  std::map<std::string, int64_t> user_index;
  for (int64_t u = 0; u < n_users; ++u) user_index[data.population.users[u].id] = u;
  // Alignment of each user with the population: cos(w_u, mean w).
  std::vector<double> mean_w(static_cast<size_t>(data.population.n_dims), 0.0);
  for (const auto& user : data.population.users)
    for (size_t k = 0; k < mean_w.size(); ++k) mean_w[k] += user.weights[k] / static_cast<double>(n_users);
  std::map<std::string, std::vector<double>> z_cache;
  HiddenTruth truth;
  truth.beta = data.population.options.beta;
  auto z_of = [&](const std::string& text) -> const std::vector<double>& {
    auto it = z_cache.find(text);
    if (it == z_cache.end()) it = z_cache.emplace(text, graders.z(text)).first;
    return it->second;
  };
  truth.utility = [&](const std::string& user_id, const std::string& prompt, const std::string& response) {
    return utility(data.population.users[user_index.at(user_id)], z_of(prompt + response));
  };
  const SimulatedUser mean_user{"population", mean_w, 0, false};
  truth.population_utility = [&](const std::string& prompt, const std::string& response) {
    return utility(mean_user, z_of(prompt + response));
  };

  MethodContext ctx(*model, tok, options.generation, seed);
  for (int64_t p = n_train_prompts; p < n_prompts; ++p) ctx.set_pool(prompts[p], pools[p]);
  {
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& item : data.items) texts.emplace_back(prompts[item.prompt], item.response);
    for (int64_t p = 0; p < n_prompts; ++p) texts.emplace_back(prompts[p], "");
    ctx.precompute_features(texts);
  }

  auto pair_text = [&](const LabeledPair& p) {
    return PairText{prompts[p.prompt], data.items[p.chosen].response, data.items[p.rejected].response};
  };
  auto user_data = [&](int64_t u, int64_t budget) {
    UserData ud{data.population.users[u].id, u < static_cast<int64_t>(data.seen.size()), {}};
    for (int64_t i = 0; i < budget; ++i) ud.pairs.push_back(pair_text(data.train_pairs[u][i]));
    return ud;
  };
  FitData fit_base;
  fit_base.dimensions = data.dimensions;
  for (const auto& pairs : data.dimension_pairs) {
    fit_base.dimension_pairs.emplace_back();
    for (const auto& p : pairs) fit_base.dimension_pairs.back().push_back(pair_text(p));
  }
  // Each test pair is shown in an order fixed per user, the same for every method.
  auto accuracy_of = [&](Method& method, const UserData& ud, int64_t u) {
    Rng order(derive_seed(seed, "order." + ud.id));
    double credit = 0.0;
    for (const auto& lp : data.test_pairs[u]) {
      const PairText p = pair_text(lp);
      const bool chosen_first = order.bernoulli(0.5);
      const double prob = chosen_first ? method.predict(ud, p.prompt, p.chosen, p.rejected, ctx)
                                       : method.predict(ud, p.prompt, p.rejected, p.chosen, ctx);
      credit += prob == 0.5 ? 0.5 : ((prob > 0.5) == chosen_first ? 1.0 : 0.0);
    }
    return credit / static_cast<double>(data.test_pairs[u].size());
  };

  std::vector<double> alignment;
  for (const auto& user : data.population.users) {
    double dot = 0.0, uu = 0.0, mm = 0.0;
    for (size_t k = 0; k < mean_w.size(); ++k)
      dot += user.weights[k] * mean_w[k], uu += user.weights[k] * user.weights[k], mm += mean_w[k] * mean_w[k];
    alignment.push_back(uu > 0 && mm > 0 ? dot / std::sqrt(uu * mm) : 0.0);
  }

  int64_t work = 0;
  for (const auto* info : methods) {
    const bool gen = info->make()->generates();
    work += static_cast<int64_t>(budgets.size()) * n_users + (gen ? n_users : 0);
  }
  ProgressBar bar("bench: methods", work, options.progress);
  int64_t done = 0;

  json methods_json = json::array(), accuracy_json = json::array(), generation_json = json::array();
  std::vector<UserFigures> per_user(static_cast<size_t>(n_users));
  // utilities[method][u * n_test + t]
  std::map<std::string, std::vector<double>> utilities;
  std::map<std::string, json> costs;
  const int64_t n_test_prompts = n_prompts - n_train_prompts;
  for (const auto* info : methods) {
    auto method = info->make();
    ctx.set_truth(info->oracle ? &truth : nullptr);
    const auto shared_before = static_cast<std::ptrdiff_t>(ctx.shared_made().size());
    double fit_seconds = 0.0, predict_seconds = 0.0;
    int64_t n_predictions = 0;
    // acc[budget index][group] -> per-user accuracies
    std::vector<std::map<std::string, std::vector<double>>> acc(budgets.size());
    for (size_t bi = 0; bi < budgets.size(); ++bi) {
      const int64_t budget = budgets[bi];
      FitData fit = fit_base;
      fit.budget = budget;
      for (int64_t u : data.seen) fit.users.push_back(user_data(u, budget));
      auto t0 = Clock::now();
      // A method that only generates is used at the largest budget alone.
      if (method->predicts() || budget == max_budget) method->fit(fit, ctx);
      fit_seconds += seconds_since(t0);
      if (!method->predicts()) {
        done += n_users;
        bar.update(done, info->name);
        continue;
      }
      t0 = Clock::now();
      for (size_t i = 0; i < data.seen.size(); ++i) {
        const int64_t u = data.seen[i];
        acc[bi]["seen"].push_back(accuracy_of(*method, fit.users[i], u));
        if (budget == max_budget) per_user[u].accuracy[info->name] = acc[bi]["seen"].back();
        bar.update(++done, info->name);
      }
      // Unseen users meet the model fitted at the largest budget, bringing their own first-b pairs.
      if (budget == max_budget)
        for (size_t bj = 0; bj < budgets.size(); ++bj)
          for (int64_t u : data.unseen) {
            acc[bj]["unseen"].push_back(accuracy_of(*method, user_data(u, budgets[bj]), u));
            if (budgets[bj] == max_budget) per_user[u].accuracy[info->name] = acc[bj]["unseen"].back();
          }
      done += static_cast<int64_t>(data.unseen.size());
      bar.update(done, info->name);
      predict_seconds += seconds_since(t0);
      n_predictions += static_cast<int64_t>(budgets.size() * (data.seen.size() + data.unseen.size())) *
                       data.options.test_pairs_per_user;
    }
    if (method->predicts())
      for (size_t bi = 0; bi < budgets.size(); ++bi)
        for (const char* group : {"seen", "unseen"}) {
          const auto& xs = acc[bi][group];
          if (xs.empty()) continue;
          const uint64_t s = derive_seed(seed, "boot.acc." + info->name + std::to_string(bi) + group);
          accuracy_json.push_back({{"method", info->name},
                                   {"budget", budgets[bi]},
                                   {"group", group},
                                   {"mean", estimate_json(bootstrap_mean(xs, s))},
                                   {"worst_decile", estimate_json(bootstrap_worst_decile(xs, s))}});
        }
    // Generation: every user, every test prompt, with the user's pairs at the largest budget (the model as fitted
    // last, at that budget).
    double gen_seconds = 0.0;
    if (method->generates()) {
      auto& utils = utilities[info->name];
      utils.assign(static_cast<size_t>(n_users * n_test_prompts), 0.0);  // [u * n_test + t]
      int64_t tokens = 0, passes = 0;
      std::vector<UserData> users;
      for (int64_t u = 0; u < n_users; ++u) users.push_back(user_data(u, max_budget));
      // Every user of a prompt at once, so that a method may batch across users.
      for (int64_t p = n_train_prompts; p < n_prompts; ++p) {
        const auto t0 = Clock::now();
        const std::vector<Response> rs = method->generate_batch(users, prompts[p], ctx);
        gen_seconds += seconds_since(t0);
        PALIGN_CHECK(static_cast<int64_t>(rs.size()) == n_users, ErrorCode::kInternal, "[bench] method ", info->name,
                     " gave ", rs.size(), " responses for ", n_users, " users");
        for (int64_t u = 0; u < n_users; ++u) {
          const Response& r = rs[u];
          gen_seconds += r.seconds;
          tokens += r.tokens;
          passes += r.forward_passes;
          utils[u * n_test_prompts + (p - n_train_prompts)] = truth.utility(users[u].id, prompts[p], r.text);
        }
        bar.update(done + (p - n_train_prompts + 1) * n_users / n_test_prompts, info->name);
      }
      done += n_users;
      for (int64_t u = 0; u < n_users; ++u) {
        double sum = 0.0;
        for (int64_t t = 0; t < n_test_prompts; ++t) sum += utils[u * n_test_prompts + t];
        per_user[u].utility[info->name] = sum / static_cast<double>(n_test_prompts);
      }
      const auto n_responses = static_cast<double>(utils.size());
      costs[info->name] = {{"wall_ms_per_response", 1000.0 * gen_seconds / n_responses},
                           {"tokens_per_response", static_cast<double>(tokens) / n_responses},
                           {"forward_passes_per_response", static_cast<double>(passes) / n_responses}};
    }
    ctx.set_truth(nullptr);
    methods_json.push_back(
        {{"name", info->name},
         {"description", info->description},
         {"oracle", info->oracle},
         {"predicts", method->predicts()},
         {"generates", method->generates()},
         {"fit_seconds", fit_seconds},
         // What this method's fit made for the run's methods to share (e.g. the DPO experts, the user model).
         {"shared_made", std::vector<std::string>(ctx.shared_made().begin() + shared_before, ctx.shared_made().end())},
         {"predict_ms_per_pair",
          n_predictions ? json(1000.0 * predict_seconds / static_cast<double>(n_predictions)) : json(nullptr)}});
  }
  bar.finish();

  if (!utilities.empty()) {
    const auto& base = utilities.at("sample");
    auto mean_of = [](const std::vector<double>& xs) {
      double sum = 0.0;
      for (double x : xs) sum += x;
      return sum / static_cast<double>(xs.size());
    };
    const double base_mean = mean_of(base);
    const double oracle_mean = mean_of(utilities.at("oracle"));
    for (const auto* info : methods) {
      auto it = utilities.find(info->name);
      if (it == utilities.end()) continue;
      const uint64_t s = derive_seed(seed, "boot.gen." + info->name);
      const Estimate mean = bootstrap_mean(it->second, s);
      const bool is_base = info->name == "sample";
      const double share = oracle_gain_share(mean.value, base_mean, oracle_mean);
      generation_json.push_back({{"method", info->name},
                                 {"utility", estimate_json(mean)},
                                 {"win_rate", is_base ? json(nullptr) : estimate_json(win_rate(it->second, base, s))},
                                 {"oracle_gain_share", is_base || !std::isfinite(share) ? json(nullptr) : json(share)},
                                 {"cost", costs.at(info->name)}});
    }
  }

  json per_user_json = json::array();
  for (int64_t u = 0; u < n_users; ++u)
    per_user_json.push_back({{"user", data.population.users[u].id},
                             {"group", u < static_cast<int64_t>(data.seen.size()) ? "seen" : "unseen"},
                             {"alignment", alignment[u]},
                             {"contrarian", data.population.users[u].contrarian},
                             {"accuracy", per_user[u].accuracy},
                             {"utility", per_user[u].utility}});
  // What the best possible predictor scores on these noisy labels, on average: E[max(p, 1 − p)].
  double ceiling = 0.0;
  int64_t n_test = 0;
  for (int64_t u = 0; u < n_users; ++u)
    for (const auto& lp : data.test_pairs[u]) {
      const double p = sigmoid(truth.beta * (data.utility(u, lp.chosen) - data.utility(u, lp.rejected)));
      ceiling += std::max(p, 1.0 - p);
      ++n_test;
    }
  const json config = {{"mode", options.mode},
                       {"seed", seed},
                       {"budgets", budgets},
                       {"n_users", n_users},
                       {"n_seen", data.seen.size()},
                       {"n_unseen", data.unseen.size()},
                       {"n_train_prompts", n_train_prompts},
                       {"n_test_prompts", n_test_prompts},
                       {"candidates_per_prompt", options.candidates_per_prompt},
                       {"best_of_n", options.candidates_per_prompt},
                       {"test_pairs_per_user", data.options.test_pairs_per_user},
                       {"pairs_per_dimension", data.options.pairs_per_dimension},
                       {"beta", truth.beta},
                       {"max_new_tokens", options.generation.max_new_tokens},
                       {"temperature", options.generation.temperature},
                       {"top_p", options.generation.top_p},
                       {"model", options.model_dir.string()},
                       {"dimensions", data.dimensions},
                       {"base_method", "sample"},
                       {"expected_ceiling_accuracy", ceiling / static_cast<double>(std::max<int64_t>(1, n_test))}};
  const json results = {{"format", "palign.bench.results"},
                        {"version", 1},
                        {"config", config},
                        {"wall_seconds", seconds_since(t_start)},
                        {"methods", methods_json},
                        {"accuracy", accuracy_json},
                        {"generation", generation_json},
                        {"per_user", per_user_json}};
  return results.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace palign::bench
