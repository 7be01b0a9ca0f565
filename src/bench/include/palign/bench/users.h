// Simulated users for `palign bench` (PersonalLLM-style, Zollo et al. 2024): each user has a hidden utility
// R_u(y) = Σ_k w_uk · z_k(y) over the grader z-scores, with weights drawn from a mixture of persona clusters plus
// individual noise, and a share of contrarians whose persona weights are negated. Pairwise labels follow
// Bradley–Terry: P(a ≻ b) = σ(β · (R_u(a) − R_u(b))). Everything is reproducible from the seed (see rng.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "palign/bench/rng.h"

namespace palign::bench {

struct PopulationOptions {
  int n_users = 100;
  int n_personas = 4;
  // Persona centre c_p = m + persona_scale · g_p, where m ~ N(0, consensus_scale²) per dimension is shared by every
  // persona (what most users like) and g_p ~ N(0, 1) per dimension is the persona's own taste.
  double consensus_scale = 1.0;
  double persona_scale = 1.0;
  // A user's weights: s · c_p + individual_sd · e, e ~ N(0, 1) per dimension, with s = −1 for contrarians and +1
  // otherwise; each user is contrarian with probability contrarian_share, and picks a persona uniformly.
  double individual_sd = 0.3;
  double contrarian_share = 0.15;
  // Scale each user's weights to unit L2 norm, so that beta alone sets how noisy the labels are.
  bool normalize = true;
  // The label temperature: P(a ≻ b) = σ(beta · (R(a) − R(b))). 0 gives coin flips.
  double beta = 1.0;
  uint64_t seed = 0;
  // Append new fields here.
  std::string validate() const;  // "" when valid
};

struct SimulatedUser {
  std::string id;               // "u0000", "u0001", ...
  std::vector<double> weights;  // [K]
  int persona = 0;              // index into Population::persona_centres
  bool contrarian = false;
};

struct Population {
  PopulationOptions options;
  int n_dims = 0;                                    // K
  std::vector<double> consensus;                     // m: [K]
  std::vector<std::vector<double>> persona_centres;  // c_p: [n_personas][K], before negation and normalisation
  std::vector<SimulatedUser> users;                  // [n_users]

  // {"format": "palign.bench.population", "version": 1, "options": {...}, "n_dims", "consensus",
  //  "persona_centres", "users": [{"id", "weights", "persona", "contrarian"}]}. Exact round trip.
  std::string to_json() const;
  static Population from_json(std::string_view json);
};

// Draws a population over K = n_dims grader dimensions. The personas come from the seed's "personas" stream and user
// i from its own stream "user.<i>", so the first users do not change when n_users grows. Throws kInvalidArgument
// when n_dims <= 0 or the options are invalid.
Population make_population(int n_dims, const PopulationOptions& options);

// σ(x) = 1 / (1 + e^−x), computed without overflow.
double sigmoid(double x);

// R_u(y) = Σ_k w_uk · z_k(y). Throws kInvalidArgument when z does not have the user's K entries.
double utility(const SimulatedUser& user, std::span<const double> z);

// P(a ≻ b) = σ(beta · (R_u(a) − R_u(b))).
double preference_probability(const SimulatedUser& user, std::span<const double> z_a, std::span<const double> z_b,
                              double beta);

// One noisy label: true when the user prefers a to b. Draws exactly one uniform u from rng and returns
// u < preference_probability(user, z_a, z_b, beta).
bool label(const SimulatedUser& user, std::span<const double> z_a, std::span<const double> z_b, double beta, Rng& rng);

struct PreferenceLabel {
  int user = 0;  // index into Population::users
  int a = 0;     // indices into the item list
  int b = 0;
  bool a_wins = false;
};

// pairs_per_user random pairs (a ≠ b, drawn uniformly) from items (each an item's K z-scores) for every user,
// labelled with the population's beta. User i's pairs and labels come from the stream "labels.<i>" of seed, so they
// do not depend on the other users. Throws kInvalidArgument with fewer than two items, pairs_per_user < 0, or items
// whose size is not K.
std::vector<PreferenceLabel> draw_labels(const Population& population, const std::vector<std::vector<double>>& items,
                                         int pairs_per_user, uint64_t seed);

}  // namespace palign::bench
