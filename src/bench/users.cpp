// Drawing simulated users, their utilities and their noisy pairwise labels (see users.h).
#include "palign/bench/users.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

namespace palign::bench {

namespace {
constexpr const char* kFormat = "palign.bench.population";
constexpr int kVersion = 1;

bool nonnegative(double x) { return std::isfinite(x) && x >= 0.0; }

std::string user_id(int user_idx) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "u%04d", user_idx);
  return buf;
}

std::vector<double> normal_vector(Rng& rng, int n, double sd) {
  std::vector<double> v(n);
  for (double& x : v) x = sd * rng.normal();
  return v;
}
}  // namespace

std::string PopulationOptions::validate() const {
  if (n_users <= 0) return "n_users must be positive, got " + std::to_string(n_users);
  if (n_personas <= 0) return "n_personas must be positive, got " + std::to_string(n_personas);
  if (!nonnegative(consensus_scale)) return "consensus_scale must be a non-negative number";
  if (!nonnegative(persona_scale)) return "persona_scale must be a non-negative number";
  if (!nonnegative(individual_sd)) return "individual_sd must be a non-negative number";
  if (!(contrarian_share >= 0.0 && contrarian_share <= 1.0)) return "contrarian_share must be in [0, 1]";
  if (!nonnegative(beta)) return "beta must be a non-negative number";
  return "";
}

Population make_population(int n_dims, const PopulationOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[bench.users] ", problem);
  PALIGN_CHECK(n_dims > 0, ErrorCode::kInvalidArgument,
               "[bench.users] the population needs at least one grader "
               "dimension, got ",
               n_dims);
  Population pop;
  pop.options = options;
  pop.n_dims = n_dims;
  Rng persona_rng(derive_seed(options.seed, "personas"));
  pop.consensus = normal_vector(persona_rng, n_dims, options.consensus_scale);
  for (int persona_idx = 0; persona_idx < options.n_personas; ++persona_idx) {
    auto centre = normal_vector(persona_rng, n_dims, options.persona_scale);
    for (int dim_idx = 0; dim_idx < n_dims; ++dim_idx) centre[dim_idx] += pop.consensus[dim_idx];
    pop.persona_centres.push_back(std::move(centre));
  }
  for (int user_idx = 0; user_idx < options.n_users; ++user_idx) {
    Rng rng(derive_seed(options.seed, "user." + std::to_string(user_idx)));
    SimulatedUser user;
    user.id = user_id(user_idx);
    user.persona = static_cast<int>(rng.uniform_int(static_cast<uint64_t>(options.n_personas)));
    user.contrarian = rng.bernoulli(options.contrarian_share);
    const double sign = user.contrarian ? -1.0 : 1.0;
    user.weights = normal_vector(rng, n_dims, options.individual_sd);
    double norm_sq = 0.0;
    for (int dim_idx = 0; dim_idx < n_dims; ++dim_idx) {
      user.weights[dim_idx] += sign * pop.persona_centres[user.persona][dim_idx];
      norm_sq += user.weights[dim_idx] * user.weights[dim_idx];
    }
    if (options.normalize && norm_sq > 0.0) {
      const double inv = 1.0 / std::sqrt(norm_sq);
      for (double& w : user.weights) w *= inv;
    }
    pop.users.push_back(std::move(user));
  }
  return pop;
}

double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double utility(const SimulatedUser& user, std::span<const double> z) {
  PALIGN_CHECK(z.size() == user.weights.size(), ErrorCode::kInvalidArgument, "[bench.users] user ", user.id, " has ",
               user.weights.size(), " weights but the text has ", z.size(), " grader scores");
  double r = 0.0;
  for (size_t dim_idx = 0; dim_idx < z.size(); ++dim_idx) r += user.weights[dim_idx] * z[dim_idx];
  return r;
}

double preference_probability(const SimulatedUser& user, std::span<const double> z_a, std::span<const double> z_b,
                              double beta) {
  return sigmoid(beta * (utility(user, z_a) - utility(user, z_b)));
}

bool label(const SimulatedUser& user, std::span<const double> z_a, std::span<const double> z_b, double beta, Rng& rng) {
  const double p = preference_probability(user, z_a, z_b, beta);
  return rng.uniform() < p;
}

std::vector<PreferenceLabel> draw_labels(const Population& population, const std::vector<std::vector<double>>& items,
                                         int pairs_per_user, uint64_t seed) {
  PALIGN_CHECK(items.size() >= 2, ErrorCode::kInvalidArgument, "[bench.users] labels need at least two items, got ",
               items.size());
  PALIGN_CHECK(pairs_per_user >= 0, ErrorCode::kInvalidArgument, "[bench.users] pairs_per_user must be >= 0, got ",
               pairs_per_user);
  for (size_t item_idx = 0; item_idx < items.size(); ++item_idx)
    PALIGN_CHECK(static_cast<int>(items[item_idx].size()) == population.n_dims, ErrorCode::kInvalidArgument,
                 "[bench.users] item ", item_idx, " has ", items[item_idx].size(), " grader scores, expected ",
                 population.n_dims);
  std::vector<PreferenceLabel> out;
  out.reserve(population.users.size() * static_cast<size_t>(pairs_per_user));
  const uint64_t n_items = items.size();
  for (size_t user_idx = 0; user_idx < population.users.size(); ++user_idx) {
    Rng rng(derive_seed(seed, "labels." + std::to_string(user_idx)));
    const SimulatedUser& user = population.users[user_idx];
    for (int pair_idx = 0; pair_idx < pairs_per_user; ++pair_idx) {
      const int a = static_cast<int>(rng.uniform_int(n_items));
      // b uniform over the other n − 1 items.
      int b = static_cast<int>(rng.uniform_int(n_items - 1));
      if (b >= a) ++b;
      const bool a_wins = label(user, items[a], items[b], population.options.beta, rng);
      out.push_back({static_cast<int>(user_idx), a, b, a_wins});
    }
  }
  return out;
}

std::string Population::to_json() const {
  nlohmann::json users_json = nlohmann::json::array();
  for (const auto& u : users)
    users_json.push_back({{"id", u.id}, {"weights", u.weights}, {"persona", u.persona}, {"contrarian", u.contrarian}});
  const PopulationOptions& o = options;
  nlohmann::json options_json{{"n_users", o.n_users},
                              {"n_personas", o.n_personas},
                              {"consensus_scale", o.consensus_scale},
                              {"persona_scale", o.persona_scale},
                              {"individual_sd", o.individual_sd},
                              {"contrarian_share", o.contrarian_share},
                              {"normalize", o.normalize},
                              {"beta", o.beta},
                              {"seed", o.seed}};
  return nlohmann::json{{"format", kFormat},  {"version", kVersion},    {"options", options_json},
                        {"n_dims", n_dims},   {"consensus", consensus}, {"persona_centres", persona_centres},
                        {"users", users_json}}
      .dump();
}

Population Population::from_json(std::string_view json) {
  constexpr const char* kHint = "; regenerate it with palign bench";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[bench.users] malformed JSON: ", e.what());
  }
  PALIGN_CHECK(j.is_object() && j.value("format", "") == kFormat, ErrorCode::kInvalidArgument,
               "[bench.users] expected format '", kFormat, "'", kHint);
  PALIGN_CHECK(j.value("version", 0) >= 1 && j.value("version", 0) <= kVersion, ErrorCode::kInvalidArgument,
               "[bench.users] unsupported version ", j.value("version", 0), " (this build reads 1..", kVersion, ")",
               kHint);
  try {
    Population pop;
    const auto& o = j.at("options");
    pop.options = {.n_users = o.at("n_users").get<int>(),
                   .n_personas = o.at("n_personas").get<int>(),
                   .consensus_scale = o.at("consensus_scale").get<double>(),
                   .persona_scale = o.at("persona_scale").get<double>(),
                   .individual_sd = o.at("individual_sd").get<double>(),
                   .contrarian_share = o.at("contrarian_share").get<double>(),
                   .normalize = o.at("normalize").get<bool>(),
                   .beta = o.at("beta").get<double>(),
                   .seed = o.at("seed").get<uint64_t>()};
    const std::string problem = pop.options.validate();
    PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[bench.users] ", problem, kHint);
    pop.n_dims = j.at("n_dims").get<int>();
    pop.consensus = j.at("consensus").get<std::vector<double>>();
    pop.persona_centres = j.at("persona_centres").get<std::vector<std::vector<double>>>();
    for (const auto& u : j.at("users")) {
      pop.users.push_back({u.at("id").get<std::string>(), u.at("weights").get<std::vector<double>>(),
                           u.at("persona").get<int>(), u.at("contrarian").get<bool>()});
      const SimulatedUser& user = pop.users.back();
      PALIGN_CHECK(static_cast<int>(user.weights.size()) == pop.n_dims && user.persona >= 0 &&
                       user.persona < static_cast<int>(pop.persona_centres.size()),
                   ErrorCode::kInvalidArgument, "[bench.users] user ", user.id,
                   " has the wrong number of weights or an unknown persona", kHint);
    }
    return pop;
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[bench.users] malformed population: ", e.what(), kHint);
  }
}

}  // namespace palign::bench
