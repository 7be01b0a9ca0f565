// Personalized reward heads over fixed backbone features: each response is already a feature vector x ∈ R^D, and a
// head learns r(x, user) from labelled pairs (Bradley–Terry: P(chosen ≻ rejected) = σ(r(chosen) − r(rejected))).
// Four methods from the literature, one file each (fit_prm.cpp, fit_pal.cpp, fit_vpl.cpp, fit_linear.cpp):
//   prm    — personalized RLHF (Li et al. 2024): r = (w + B e_u)·x with a learned user embedding e_u ∈ R^E and a
//            learned generic embedding for unseen users.
//   pal    — PAL-B (Chen et al. 2024): P prototype rewards w_p·x mixed per user by α_u = softmax(a_u).
//   vpl    — variational preference learning (Poddar et al. 2024): a set encoder maps a user's labelled pairs to a
//            Gaussian latent z, and r = (w + B z)·x + v·tanh(W [x; z] + b); trained on the ELBO.
//   linear — per-user MAP Bradley–Terry weights over K features with a Gaussian prior at the population weights.
//   maxmin — MaxMin-RLHF (Chakraborty et al. 2024): K Bradley–Terry heads fitted by hard EM, each user assigned to the
//            head that explains their labels best; K chosen on the held-out pairs.
// The fitted heads live in scoring (scoring/personalized_reward.h): what scores, infers a new user's state, saves and
// loads. Here: the fits. Not here: backbone fine-tuning, and scoring of texts (the caller supplies features).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "palign/scoring/personalized_reward.h"

namespace palign::training {

// N labelled pairs of feature vectors. chosen, rejected: [N, D] floating point (converted to float32); user: [N]
// indices in [0, n_users), or empty when users do not matter (all pairs then belong to one user, index 0).
struct PreferencePairs {
  at::Tensor chosen, rejected;
  std::vector<int64_t> user;
  // Optional: pair i's group (its prompt). Given, the held-out pairs are whole groups, so early stopping and the
  // reported accuracy are judged on prompts the fit never saw.
  std::vector<int64_t> group;
};

struct RewardFitOptions {
  int64_t max_epochs = 300;
  double lr = 1e-2;            // AdamW learning rate
  double weight_decay = 1e-4;  // AdamW decoupled weight decay (pal: on the prototypes only, where about 0.1 keeps
                               // them identifiable); linear: the population fit's L2 = 1e-2 + weight_decay · N
  double valid_share = 0.2;    // of the pairs, held out for early stopping and the reported accuracy
  int64_t patience = 30;       // epochs without a better validation loss before stopping (the best is kept)
  int64_t batch = 256;         // pairs per step (vpl: about batch / (2 · context_pairs) users per step)
  uint64_t seed = 0;           // initialisation, the held-out split, batches, sampling
  bool progress = false;
  // Method-specific.
  int64_t n_prototypes = 4;             // pal: P
  std::string pal_mixture = "simplex";  // pal: "simplex" (softmax weights, as PAL) or "signed" (any weights)
  int64_t latent_dim = 8;               // vpl: Z
  double kl_weight = 0.1;               // vpl: β in E[log-lik] − β KL(q‖N(0, I))
  int64_t context_pairs = 8;            // vpl: pairs per user the encoder sees in training
  int64_t hidden = 32;                  // vpl: width of the encoder and reward MLPs
  int64_t embed_dim = 8;                // prm: E
  double generic_share = 0.2;           // prm: probability that a training pair is assigned to the generic user instead
  double prior_weight = 1.0;            // linear: MAP prior strength toward the population mean weights
  int64_t adapt_steps = 300;            // prm, pal: gradient steps of new_user_state's fit on a new user's pairs
  double adapt_l2 = 1e-2;               // prm, pal: L2 strength toward the generic / population state in that fit
  int64_t groups = 0;                   // maxmin: K (0: the K in 1..max_groups with the lowest held-out loss)
  int64_t max_groups = 4;               // maxmin
  int64_t em_restarts = 4;              // maxmin: random starts of the EM (the most likely kept)
  int64_t em_iterations = 50;           // maxmin: most E/M rounds per start (it stops when no user changes group)
  // Append new fields here.

  std::string validate() const;  // "" when valid
};

struct FitReport {
  int64_t epochs = 0;                             // linear: Newton steps of the population fit
  double train_accuracy = 0, valid_accuracy = 0;  // ties count one half; valid_accuracy is NaN without held-out pairs
  double valid_loss = 0;                          // mean −log σ(margin) on the held-out pairs of the kept parameters
  int64_t skipped_pairs = 0;                      // pairs whose chosen and rejected features were identical
  int64_t valid_pairs = 0;                        // the held-out pairs (whole prompts when PreferencePairs::group)
  double seconds = 0;
  // maxmin: K and the held-out loss of each K tried (K = 1, 2, ...; empty when K was given or nothing was held out).
  int64_t groups = 0;
  std::vector<double> valid_loss_by_groups;
};

// A fitted head (scoring::PersonalizedReward scores, infers new users' states and saves it) and how the fit went.
struct FittedReward {
  std::unique_ptr<scoring::PersonalizedReward> head;
  FitReport report;
};

// Fits method ("prm", "pal", "vpl", "linear" or "maxmin") on pairs from n_users users. Deterministic given
// options.seed. Throws kInvalidArgument for an unknown method (naming the known ones), invalid options, empty pairs,
// shape mismatches, non-finite features, user indices out of range, or all pairs identical (a few identical pairs are
// skipped and counted in FitReport::skipped_pairs).
FittedReward fit_personalized_reward(const std::string& method, const PreferencePairs& pairs, int64_t n_users,
                                     const RewardFitOptions& options);

// maxmin's EM on pairs diff [N, D] of users user[i] in [0, n_users): from `restarts` random assignments (seeded by
// seed + r), alternate M (each group's head: the MAP Bradley–Terry fit of its users' pairs with L2 l2, as
// scoring::linear_map_fit with a zero prior) and E (each user to the head with the highest Σ log σ(w_k·d_i) over their
// pairs) until no user moves or `iterations`; the start with the highest log-likelihood is kept. A group left empty is
// given the user its head explains worst. Users without pairs get group 0.
struct MaxminEm {
  at::Tensor heads;                 // [K, D] float64
  std::vector<int64_t> assignment;  // [n_users]
  double loglik = 0;
  int64_t iterations = 0;  // of the kept start
};
MaxminEm maxmin_em(const at::Tensor& diff, const std::vector<int64_t>& user, int64_t n_users, int64_t groups, double l2,
                   int64_t iterations, int64_t restarts, uint64_t seed);

// ---- The objectives, exposed for gradient checks. Any floating dtype; diff = chosen − rejected [N, D]; user [N]
// int64. Each returns a scalar (the mean over pairs of the Bradley–Terry negative log-likelihood −log σ(margin), plus
// the stated terms).

// prm: margin_i = (w + B e_{user_i})·diff_i (scoring::PrmParams).
at::Tensor prm_loss(const scoring::PrmParams& p, const at::Tensor& diff, const at::Tensor& user);

// pal: margin_i = softmax(logits_{user_i})·(prototypes diff_i) (scoring::PalParams).
at::Tensor pal_loss(const scoring::PalParams& p, const at::Tensor& diff, const at::Tensor& user);

// vpl (scoring::VplParams; the encoder and the reward are scoring::vpl_encode and scoring::vpl_reward).
// A batch of G users: ctx_chosen, ctx_rejected [G, C, D] with ctx_mask [G, C] (1 = a real pair); targets chosen,
// rejected [M, D] with group [M] int64 in [0, G); eps [G, Z] standard normal noise for z = μ + exp(log σ² / 2)·eps.
struct VplBatch {
  at::Tensor ctx_chosen, ctx_rejected, ctx_mask, chosen, rejected, group, eps;
};
// The negative ELBO per pair and user: mean BT NLL over the targets + kl_weight · mean over users of
// KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²).
at::Tensor vpl_loss(const scoring::VplParams& p, const VplBatch& batch, double kl_weight);

}  // namespace palign::training
