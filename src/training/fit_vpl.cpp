// "vpl": variational preference learning (Poddar et al. 2024, "Personalizing Reinforcement Learning from Human
// Feedback with Variational Preference Learning"), here over fixed features. A set encoder maps a user's labelled
// pairs to q(z) = N(μ, σ²) over a latent z [Z]; the reward r(x, z) is conditioned on it (formulas in reward_heads.h).
// Training maximises the ELBO per user: E_q[Σ log σ(r(c, z) − r(r, z))] over target pairs − β KL(q ‖ N(0, I)), with
// context_pairs of the user's pairs as the encoder's context and the others as targets, z by reparameterisation.
// The kept head (scoring) stores each seen user's latent: μ of all their pairs.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "palign/base/error.h"
#include "palign/base/timer.h"
#include "reward_heads_internal.h"

namespace palign::training {

at::Tensor vpl_loss(const scoring::VplParams& p, const VplBatch& b, double kl_weight) {
  const auto [mu, logvar] = scoring::vpl_encode(p, b.ctx_chosen, b.ctx_rejected, b.ctx_mask);
  const at::Tensor z = (mu + at::exp(0.5 * logvar) * b.eps).index_select(0, b.group);  // [M, Z]
  const at::Tensor margin = scoring::vpl_reward(p, b.chosen, z) - scoring::vpl_reward(p, b.rejected, z);
  const at::Tensor kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean();
  return at::softplus(-margin).mean() + kl_weight * kl;
}

namespace detail {

namespace {

using Groups = std::vector<std::vector<int64_t>>;  // per user: positions of their pairs

Groups group_by_user(const at::Tensor& user, int64_t n_users) {
  Groups groups(static_cast<size_t>(n_users));
  const auto* u = user.data_ptr<int64_t>();
  for (int64_t i = 0; i < user.numel(); ++i) groups[static_cast<size_t>(u[i])].push_back(i);
  return groups;
}

// One fit: the parameters being trained and what sampling and encoding need.
class VplFit {
 public:
  FittedReward fit(const PairData& data, const RewardFitOptions& o) {
    const auto t0 = Clock::now();
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    FitReport report;
    report.skipped_pairs = data.skipped;
    dim_ = data.diff.size(1);
    n_users_ = data.n_users;
    latent_ = o.latent_dim;
    hidden_ = o.hidden;
    kl_weight_ = o.kl_weight;
    context_pairs_ = o.context_pairs;
    at::Generator gen = make_generator(o.seed);
    init_params(gen);
    const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen, data.group);
    report.valid_pairs = valid.numel();
    const at::Tensor tc = data.chosen.index_select(0, train), tr = data.rejected.index_select(0, train);
    const at::Tensor tu = data.user.index_select(0, train);
    const at::Tensor vc = data.chosen.index_select(0, valid), vr = data.rejected.index_select(0, valid);
    const at::Tensor vu = data.user.index_select(0, valid);
    const Groups train_groups = group_by_user(tu, n_users_);
    std::vector<int64_t> active;  // users with training pairs
    for (int64_t u = 0; u < n_users_; ++u)
      if (!train_groups[static_cast<size_t>(u)].empty()) active.push_back(u);

    TrainLoop loop;
    loop.n_items = static_cast<int64_t>(active.size());
    loop.items_per_step = std::max<int64_t>(1, o.batch / (2 * context_pairs_));
    loop.loss = [&](const at::Tensor& items) {
      return vpl_loss(p_, sample_batch(items, active, train_groups, tc, tr, gen), kl_weight_);
    };
    if (valid.numel() > 0)
      loop.valid = [&] {
        const at::Tensor m = margins(vc, vr, vu, encode_users(train_groups, tc, tr));
        return std::make_pair(bt_nll(m), bt_accuracy(m));
      };
    report.epochs = run_training(params(), {}, o, loop, gen, "fit vpl");
    for (at::Tensor* t : param_ptrs()) *t = t->detach();
    at::NoGradGuard no_grad;
    const at::Tensor train_z = encode_users(train_groups, tc, tr);
    report.train_accuracy = bt_accuracy(margins(tc, tr, tu, train_z));
    const at::Tensor m = margins(vc, vr, vu, train_z);
    report.valid_accuracy = bt_accuracy(m);
    report.valid_loss = bt_nll(m);
    // The kept states use all of each user's pairs, the held-out ones included.
    at::Tensor user_z = encode_users(group_by_user(data.user, n_users_), data.chosen, data.rejected);
    report.seconds = seconds_since(t0);
    return {scoring::make_vpl_reward(std::move(p_), std::move(user_z), kl_weight_, context_pairs_), report};
  }

 private:
  std::vector<at::Tensor*> param_ptrs() {
    return {&p_.enc_w1, &p_.enc_b1, &p_.enc_w2, &p_.enc_b2, &p_.w, &p_.mix, &p_.rew_w1, &p_.rew_b1, &p_.out};
  }
  std::vector<at::Tensor> params() {
    std::vector<at::Tensor> out;
    for (at::Tensor* t : param_ptrs()) out.push_back(*t);
    return out;
  }

  // Xavier-style scales for the tanh layers; the latent heads and the MLP's output start small so that training
  // begins near a shared linear reward with σ ≈ 1.
  void init_params(at::Generator& gen) {
    const int64_t D = dim_, Z = latent_, H = hidden_;
    auto normal = [&](std::vector<int64_t> shape, double scale) {
      return (at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat)) * scale).requires_grad_();
    };
    p_.enc_w1 = normal({H, 2 * D}, 1.0 / std::sqrt(2.0 * static_cast<double>(D)));
    p_.enc_b1 = at::zeros({H}).requires_grad_();
    p_.enc_w2 = normal({2 * Z, H}, 0.1 / std::sqrt(static_cast<double>(H)));
    p_.enc_b2 = at::zeros({2 * Z}).requires_grad_();
    p_.w = at::zeros({D}).requires_grad_();
    p_.mix = normal({D, Z}, 0.1);
    p_.rew_w1 = normal({H, D + Z}, 1.0 / std::sqrt(static_cast<double>(D + Z)));
    p_.rew_b1 = at::zeros({H}).requires_grad_();
    p_.out = normal({H}, 0.01);
  }

  // One step's batch for the users active[items]: each user's training pairs are shuffled, the first
  // min(context_pairs, n − 1) become the context and the rest the targets (a user with one pair uses it for both).
  VplBatch sample_batch(const at::Tensor& items, const std::vector<int64_t>& active, const Groups& groups,
                        const at::Tensor& chosen, const at::Tensor& rejected, at::Generator& gen) const {
    const int64_t G = items.size(0), C = context_pairs_;
    std::vector<int64_t> ctx(static_cast<size_t>(G * C), 0), target, group;
    std::vector<float> mask(static_cast<size_t>(G * C), 0.0f);
    const auto* item = items.data_ptr<int64_t>();
    for (int64_t g = 0; g < G; ++g) {
      const auto& pairs = groups[static_cast<size_t>(active[static_cast<size_t>(item[g])])];
      const auto n = static_cast<int64_t>(pairs.size());
      const at::Tensor perm = at::randperm(n, gen, at::kLong);
      const auto* order = perm.data_ptr<int64_t>();
      const int64_t n_ctx = n >= 2 ? std::min(C, n - 1) : 1;
      for (int64_t k = 0; k < n_ctx; ++k) {
        ctx[static_cast<size_t>(g * C + k)] = pairs[static_cast<size_t>(order[k])];
        mask[static_cast<size_t>(g * C + k)] = 1.0f;
      }
      for (int64_t k = n >= 2 ? n_ctx : 0; k < n; ++k) {
        target.push_back(pairs[static_cast<size_t>(order[k])]);
        group.push_back(g);
      }
    }
    const int64_t D = dim_;
    const at::Tensor ctx_idx = at::tensor(ctx, at::kLong), target_idx = at::tensor(target, at::kLong);
    VplBatch b;
    b.ctx_chosen = chosen.index_select(0, ctx_idx).view({G, C, D});
    b.ctx_rejected = rejected.index_select(0, ctx_idx).view({G, C, D});
    b.ctx_mask = at::tensor(mask).view({G, C});
    b.chosen = chosen.index_select(0, target_idx);
    b.rejected = rejected.index_select(0, target_idx);
    b.group = at::tensor(group, at::kLong);
    b.eps = at::randn({G, latent_}, gen, at::TensorOptions().dtype(at::kFloat));
    return b;
  }

  // μ [U, Z] of each user's pairs (all of them as one context set); zero for users without pairs.
  at::Tensor encode_users(const Groups& groups, const at::Tensor& chosen, const at::Tensor& rejected) const {
    const auto n_users = static_cast<int64_t>(groups.size());
    at::Tensor z = at::zeros({n_users, latent_});
    int64_t longest = 1;
    for (const auto& g : groups) longest = std::max<int64_t>(longest, static_cast<int64_t>(g.size()));
    // Users in chunks of about 4M padded feature values.
    const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 22) / (longest * dim_));
    for (int64_t begin = 0; begin < n_users; begin += chunk) {
      const int64_t end = std::min(n_users, begin + chunk), G = end - begin;
      std::vector<int64_t> idx(static_cast<size_t>(G * longest), 0);
      std::vector<float> mask(static_cast<size_t>(G * longest), 0.0f);
      for (int64_t g = 0; g < G; ++g) {
        const auto& pairs = groups[static_cast<size_t>(begin + g)];
        for (size_t k = 0; k < pairs.size(); ++k) {
          idx[static_cast<size_t>(g * longest) + k] = pairs[k];
          mask[static_cast<size_t>(g * longest) + k] = 1.0f;
        }
      }
      const at::Tensor index = at::tensor(idx, at::kLong), m = at::tensor(mask).view({G, longest});
      const at::Tensor mu = scoring::vpl_encode(p_, chosen.index_select(0, index).view({G, longest, dim_}),
                                                rejected.index_select(0, index).view({G, longest, dim_}), m)
                                .first;
      z.slice(0, begin, end).copy_(mu * (m.sum(1, /*keepdim=*/true) > 0).to(at::kFloat));
    }
    return z;
  }

  // Margins r(c, z_u) − r(r, z_u) [N] of pairs with users [N], given the users' latents z [U, Z].
  at::Tensor margins(const at::Tensor& chosen, const at::Tensor& rejected, const at::Tensor& user,
                     const at::Tensor& z) const {
    const at::Tensor zu = z.index_select(0, user);
    return scoring::vpl_reward(p_, chosen, zu) - scoring::vpl_reward(p_, rejected, zu);
  }

  scoring::VplParams p_;
  int64_t dim_ = 0, n_users_ = 0, latent_ = 0, hidden_ = 0, context_pairs_ = 0;
  double kl_weight_ = 0;
};

}  // namespace

FittedReward fit_vpl(const PairData& data, const RewardFitOptions& o) { return VplFit().fit(data, o); }

}  // namespace detail

}  // namespace palign::training
