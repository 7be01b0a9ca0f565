// Personalized reward heads over fixed backbone features, at serving time: each response is a feature vector
// x ∈ R^D, and a head scores r(x, user) for a user's state (a seen user's, or one inferred from a new user's
// labelled pairs). Four methods from the literature; training::fit_personalized_reward fits them:
//   prm    — personalized RLHF (Li et al. 2024): r = (w + B e_u)·x with a learned user embedding e_u ∈ R^E and a
//            learned generic embedding for unseen users.
//   pal    — PAL-B (Chen et al. 2024): P prototype rewards w_p·x mixed per user by α_u = softmax(a_u).
//   vpl    — variational preference learning (Poddar et al. 2024): a set encoder maps a user's labelled pairs to a
//            Gaussian latent z, and r = (w + B z)·x + v·tanh(W [x; z] + b).
//   linear — per-user MAP Bradley–Terry weights over K features with a Gaussian prior at the population weights.
//   maxmin — MaxMin-RLHF (Chakraborty et al. 2024): K Bradley–Terry heads w_k·x, each user in one group (hard EM);
//            without pairs, the egalitarian min_k w_k·x.
// Saved as DIR/reward_head.safetensors + DIR/reward_head.json ({"format": "palign.reward_head", "version": 1,
// "method", "dim", "n_users", the method's hyper-parameters}).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

namespace palign::scoring {

// A fitted personalized reward head. Not copyable; the methods are const and thread-compatible. A user's state is a
// 1-D float32 tensor whose meaning depends on the method: prm e_u [E], pal α_u [P] (on the simplex), vpl z [Z],
// linear w_u [D], maxmin a one-hot [K] of the user's group (all zeros: the generic user, scored min_k w_k·x).
class PersonalizedReward {
 public:
  PersonalizedReward(int64_t dim, int64_t n_users) : dim_(dim), n_users_(n_users) {}
  PersonalizedReward(const PersonalizedReward&) = delete;
  PersonalizedReward& operator=(const PersonalizedReward&) = delete;
  virtual ~PersonalizedReward() = default;

  virtual std::string method() const = 0;       // "prm", "pal", "vpl", "linear", "maxmin"
  int64_t dim() const { return dim_; }          // D
  int64_t n_users() const { return n_users_; }  // seen users

  // The state of a seen user (an index of the fit). Throws kInvalidArgument when out of range.
  virtual at::Tensor user_state(int64_t user) const = 0;
  // The state of a new user from K labelled pairs chosen, rejected [K, D]; K = 0 (or undefined tensors) gives the
  // generic / population state: prm the generic embedding, pal the population's mean α, vpl z = 0, linear w_pop.
  // prm and pal fit it by Adam on the pairs with everything else frozen, linear by Newton steps, vpl encodes them.
  virtual at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const = 0;
  // Rewards [N] float32 of features x [N, D] for one user's state.
  virtual at::Tensor score(const at::Tensor& x, const at::Tensor& state) const = 0;
  // Writes DIR/reward_head.safetensors and DIR/reward_head.json, creating DIR. Throws kIo when it cannot.
  virtual void save(const std::filesystem::path& dir) const = 0;

 private:
  int64_t dim_ = 0, n_users_ = 0;
};

// Loads what save() wrote. Throws kNotFound for a missing file, kInvalidArgument for a wrong format, version,
// method or tensor shape.
std::unique_ptr<PersonalizedReward> load_personalized_reward(const std::filesystem::path& dir);

// A [N, D] feature matrix checked (defined, 2-D, floating point, finite, D columns unless dim < 0) and returned as
// contiguous float32. what ("chosen") and where ("training.prm.fit") name it in the kInvalidArgument messages.
at::Tensor check_feature_matrix(const at::Tensor& t, const char* what, int64_t dim, const char* where);

// ---- The methods' parameters, as a fit produces them (float32; D features, U seen users).

// prm: w [D], mix = B [D, E], embed [U + 1, E] (row U: the generic user).
struct PrmParams {
  at::Tensor w, mix, embed;
};
// maxmin: heads [K, D] float32, assignment [U] int64 (each seen user's group).
struct MaxminParams {
  at::Tensor heads, assignment;
};
// pal: prototypes [P, D], logits [U, P].
struct PalParams {
  at::Tensor prototypes, logits;
  // How a user's logits a_u weigh the prototypes: "simplex", α_u = softmax(a_u) as in PAL (users inside the
  // prototypes' convex hull), or "signed", α_u = a_u (any linear combination: users outside the hull, e.g. ones who
  // want the opposite of a prototype).
  std::string mixture = "simplex";

  // α of logits [..., P] (softmax over the last dimension, or the logits themselves).
  at::Tensor alpha(const at::Tensor& logits) const;
};
// vpl, with H the hidden width and Z the latent size.
// Encoder: h_k = tanh(enc_w1 [c_k − r_k; c_k + r_k] + enc_b1) for each context pair k, masked mean over k, then
// [μ; log σ²] = enc_w2 h̄ + enc_b2. enc_w1 [H, 2D], enc_b1 [H], enc_w2 [2Z, H], enc_b2 [2Z].
// Reward: r(x, z) = (w + B z)·x + out·tanh(rew_w1 [x; z] + rew_b1). w [D], mix = B [D, Z], rew_w1 [H, D + Z],
// rew_b1 [H], out [H].
struct VplParams {
  at::Tensor enc_w1, enc_b1, enc_w2, enc_b2, w, mix, rew_w1, rew_b1, out;
};

// A new user's state for prm and pal: adapt_steps Adam steps at adapt_lr with an L2 pull of adapt_l2 toward the
// generic / population state (0 steps: that state).
struct NewUserFit {
  int64_t adapt_steps = 0;
  double adapt_l2 = 0, adapt_lr = 0;
};

std::unique_ptr<PersonalizedReward> make_prm_reward(PrmParams params, NewUserFit new_user);
std::unique_ptr<PersonalizedReward> make_pal_reward(PalParams params, NewUserFit new_user);
// user_z [U, Z]: the seen users' latents. kl_weight and context_pairs are the fit's, kept with the head.
std::unique_ptr<PersonalizedReward> make_vpl_reward(VplParams params, at::Tensor user_z, double kl_weight,
                                                    int64_t context_pairs);
// Throws kInvalidArgument for a user's group outside [0, K).
std::unique_ptr<PersonalizedReward> make_maxmin_reward(MaxminParams params);
// w_pop [D], w_users [U, D]; prior_weight λ of a new user's MAP fit.
std::unique_ptr<PersonalizedReward> make_linear_reward(at::Tensor w_pop, at::Tensor w_users, double prior_weight);

// (μ, log σ²) [G, Z] of context sets ctx_chosen, ctx_rejected [G, C, D] with ctx_mask [G, C] (1 = a real pair).
std::pair<at::Tensor, at::Tensor> vpl_encode(const VplParams& p, const at::Tensor& ctx_chosen,
                                             const at::Tensor& ctx_rejected, const at::Tensor& ctx_mask);
// Rewards [N] of x [N, D] with latents z [N, Z] (or [Z], broadcast).
at::Tensor vpl_reward(const VplParams& p, const at::Tensor& x, const at::Tensor& z);

// linear: the MAP objective Σ_i softplus(−w·diff_i) + prior_weight/2 ‖w − prior‖² (a sum, not a mean), its analytic
// gradient, and its minimiser by damped Newton steps from prior (the iterations used go to *steps when given).
double linear_map_objective(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior, double prior_weight);
at::Tensor linear_map_gradient(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior,
                               double prior_weight);
at::Tensor linear_map_fit(const at::Tensor& diff, const at::Tensor& prior, double prior_weight,
                          int64_t* steps = nullptr);

}  // namespace palign::scoring
