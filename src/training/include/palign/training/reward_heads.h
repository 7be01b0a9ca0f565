// Personalized reward heads over fixed backbone features: each response is already a feature vector x ∈ R^D, and a
// head learns r(x, user) from labelled pairs (Bradley–Terry: P(chosen ≻ rejected) = σ(r(chosen) − r(rejected))).
// Four methods from the literature, one file each (reward_prm.cpp, reward_pal.cpp, reward_vpl.cpp, reward_linear.cpp):
//   prm    — personalized RLHF (Li et al. 2024): r = (w + B e_u)·x with a learned user embedding e_u ∈ R^E and a
//            learned generic embedding for unseen users.
//   pal    — PAL-B (Chen et al. 2024): P prototype rewards w_p·x mixed per user by α_u = softmax(a_u).
//   vpl    — variational preference learning (Poddar et al. 2024): a set encoder maps a user's labelled pairs to a
//            Gaussian latent z, and r = (w + B z)·x + v·tanh(W [x; z] + b); trained on the ELBO.
//   linear — per-user MAP Bradley–Terry weights over K features with a Gaussian prior at the population weights.
// Not here: backbone fine-tuning, and scoring of texts (the caller supplies features).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace palign::training {

// N labelled pairs of feature vectors. chosen, rejected: [N, D] floating point (converted to float32); user: [N]
// indices in [0, n_users), or empty when users do not matter (all pairs then belong to one user, index 0).
struct PreferencePairs {
  at::Tensor chosen, rejected;
  std::vector<int64_t> user;
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
  int64_t n_prototypes = 4;    // pal: P
  int64_t latent_dim = 8;      // vpl: Z
  double kl_weight = 0.1;      // vpl: β in E[log-lik] − β KL(q‖N(0, I))
  int64_t context_pairs = 8;   // vpl: pairs per user the encoder sees in training
  int64_t hidden = 32;         // vpl: width of the encoder and reward MLPs
  int64_t embed_dim = 8;       // prm: E
  double generic_share = 0.2;  // prm: probability that a training pair is assigned to the generic user instead
  double prior_weight = 1.0;   // linear: MAP prior strength toward the population mean weights
  int64_t adapt_steps = 300;   // prm, pal: gradient steps of new_user_state's fit on a new user's pairs
  double adapt_l2 = 1e-2;      // prm, pal: L2 strength toward the generic / population state in that fit
  // Append new fields here.

  std::string validate() const;  // "" when valid
};

struct FitReport {
  int64_t epochs = 0;                             // linear: Newton steps of the population fit
  double train_accuracy = 0, valid_accuracy = 0;  // ties count one half; valid_accuracy is NaN without held-out pairs
  double valid_loss = 0;                          // mean −log σ(margin) on the held-out pairs of the kept parameters
  int64_t skipped_pairs = 0;                      // pairs whose chosen and rejected features were identical
  double seconds = 0;
};

// A personalized reward head. Not copyable; fit() replaces all parameters; the const methods are thread-compatible.
// A user's state is a 1-D float32 tensor whose meaning depends on the method: prm e_u [E], pal α_u [P] (on the
// simplex), vpl z [Z], linear w_u [D].
class PersonalizedReward {
 public:
  PersonalizedReward() = default;
  PersonalizedReward(const PersonalizedReward&) = delete;
  PersonalizedReward& operator=(const PersonalizedReward&) = delete;
  virtual ~PersonalizedReward() = default;

  virtual std::string method() const = 0;  // "prm", "pal", "vpl", "linear"
  // Fits on pairs from n_users users. Deterministic given options.seed. Throws kInvalidArgument for invalid options,
  // empty pairs, shape mismatches, non-finite features, user indices out of range, or all pairs identical (a few
  // identical pairs are skipped and counted in FitReport::skipped_pairs).
  virtual FitReport fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& options) = 0;

  int64_t dim() const { return dim_; }
  int64_t n_users() const { return n_users_; }
  bool fitted() const { return dim_ > 0; }

  // The state of a seen user (an index of fit). Throws kInvalidArgument when out of range.
  virtual at::Tensor user_state(int64_t user) const = 0;
  // The state of a new user from K labelled pairs chosen, rejected [K, D]; K = 0 (or undefined tensors) gives the
  // generic / population state: prm the generic embedding, pal the population's mean α, vpl z = 0, linear w_pop.
  virtual at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const = 0;
  // Rewards [N] float32 of features x [N, D] for one user's state.
  virtual at::Tensor score(const at::Tensor& x, const at::Tensor& state) const = 0;
  // Writes DIR/reward_head.safetensors and DIR/reward_head.json ({"format": "palign.reward_head", "version": 1,
  // "method", "dim", "n_users", the method's hyper-parameters}), creating DIR. Throws kIo when it cannot.
  virtual void save(const std::filesystem::path& dir) const = 0;

 protected:
  int64_t dim_ = 0;      // D; 0 before fit or load
  int64_t n_users_ = 0;  // seen users
};

// "prm", "pal", "vpl" or "linear"; throws kInvalidArgument naming the known methods otherwise.
std::unique_ptr<PersonalizedReward> make_personalized_reward(const std::string& method);
// Loads what save() wrote. Throws kNotFound for a missing file, kInvalidArgument for a wrong format, version,
// method or tensor shape.
std::unique_ptr<PersonalizedReward> load_personalized_reward(const std::filesystem::path& dir);

// ---- The objectives, exposed for gradient checks. Any floating dtype; diff = chosen − rejected [N, D]; user [N]
// int64. Each returns a scalar (the mean over pairs of the Bradley–Terry negative log-likelihood −log σ(margin), plus
// the stated terms).

// prm: margin_i = (w + B e_{user_i})·diff_i. w [D], mix = B [D, E], embed [U + 1, E] (row U: the generic user).
struct PrmParams {
  at::Tensor w, mix, embed;
};
at::Tensor prm_loss(const PrmParams& p, const at::Tensor& diff, const at::Tensor& user);

// pal: margin_i = softmax(logits_{user_i})·(prototypes diff_i). prototypes [P, D], logits [U, P].
struct PalParams {
  at::Tensor prototypes, logits;
};
at::Tensor pal_loss(const PalParams& p, const at::Tensor& diff, const at::Tensor& user);

// vpl, with H the hidden width and Z the latent size.
// Encoder: h_k = tanh(enc_w1 [c_k − r_k; c_k + r_k] + enc_b1) for each context pair k, masked mean over k, then
// [μ; log σ²] = enc_w2 h̄ + enc_b2. enc_w1 [H, 2D], enc_b1 [H], enc_w2 [2Z, H], enc_b2 [2Z].
// Reward: r(x, z) = (w + B z)·x + out·tanh(rew_w1 [x; z] + rew_b1). w [D], mix = B [D, Z], rew_w1 [H, D + Z],
// rew_b1 [H], out [H].
struct VplParams {
  at::Tensor enc_w1, enc_b1, enc_w2, enc_b2, w, mix, rew_w1, rew_b1, out;
};
// A batch of G users: ctx_chosen, ctx_rejected [G, C, D] with ctx_mask [G, C] (1 = a real pair); targets chosen,
// rejected [M, D] with group [M] int64 in [0, G); eps [G, Z] standard normal noise for z = μ + exp(log σ² / 2)·eps.
struct VplBatch {
  at::Tensor ctx_chosen, ctx_rejected, ctx_mask, chosen, rejected, group, eps;
};
// (μ, log σ²) [G, Z] of context sets.
std::pair<at::Tensor, at::Tensor> vpl_encode(const VplParams& p, const at::Tensor& ctx_chosen,
                                             const at::Tensor& ctx_rejected, const at::Tensor& ctx_mask);
// Rewards [N] of x [N, D] with latents z [N, Z] (or [Z], broadcast).
at::Tensor vpl_reward(const VplParams& p, const at::Tensor& x, const at::Tensor& z);
// The negative ELBO per pair and user: mean BT NLL over the targets + kl_weight · mean over users of
// KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²).
at::Tensor vpl_loss(const VplParams& p, const VplBatch& batch, double kl_weight);

// linear: the MAP objective Σ_i softplus(−w·diff_i) + prior_weight/2 ‖w − prior‖² (a sum, not a mean), its analytic
// gradient, and its minimiser by damped Newton steps from prior (the iterations used go to *steps when given).
double linear_map_objective(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior, double prior_weight);
at::Tensor linear_map_gradient(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior,
                               double prior_weight);
at::Tensor linear_map_fit(const at::Tensor& diff, const at::Tensor& prior, double prior_weight,
                          int64_t* steps = nullptr);

}  // namespace palign::training
