// "vpl": variational preference learning (Poddar et al. 2024, "Personalizing Reinforcement Learning from Human
// Feedback with Variational Preference Learning"), here over fixed features. A set encoder maps a user's labelled
// pairs to q(z) = N(μ, σ²) over a latent z [Z]; the reward r(x, z) is conditioned on it (formulas in reward_heads.h).
// Training maximises the ELBO per user: E_q[Σ log σ(r(c, z) − r(r, z))] over target pairs − β KL(q ‖ N(0, I)), with
// context_pairs of the user's pairs as the encoder's context and the others as targets, z by reparameterisation.
// At test time a user's latent is μ of their pairs; with no pairs it is the prior mean, z = 0.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "palign/base/error.h"
#include "reward_heads_internal.h"

namespace palign::training {

using nlohmann::json;

std::pair<at::Tensor, at::Tensor> vpl_encode(const VplParams& p, const at::Tensor& ctx_chosen,
                                             const at::Tensor& ctx_rejected, const at::Tensor& ctx_mask) {
  const at::Tensor in = at::cat({ctx_chosen - ctx_rejected, ctx_chosen + ctx_rejected}, -1);  // [G, C, 2D]
  const at::Tensor h = at::tanh(at::matmul(in, p.enc_w1.t()) + p.enc_b1);                     // [G, C, H]
  const at::Tensor mask = ctx_mask.to(h.scalar_type()).unsqueeze(-1);                         // [G, C, 1]
  const at::Tensor pooled = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0);                   // [G, H]
  const at::Tensor out = pooled.matmul(p.enc_w2.t()) + p.enc_b2;                              // [G, 2Z]
  const int64_t latent = out.size(1) / 2;
  return {out.slice(1, 0, latent), out.slice(1, latent).clamp(-10.0, 10.0)};
}

at::Tensor vpl_reward(const VplParams& p, const at::Tensor& x, const at::Tensor& z) {
  const at::Tensor zz = z.dim() == 1 ? z.unsqueeze(0).expand({x.size(0), z.size(0)}) : z;  // [N, Z]
  const at::Tensor linear = ((p.w + zz.matmul(p.mix.t())) * x).sum(1);
  const at::Tensor h = at::tanh(at::cat({x, zz}, 1).matmul(p.rew_w1.t()) + p.rew_b1);  // [N, H]
  return linear + h.matmul(p.out);
}

at::Tensor vpl_loss(const VplParams& p, const VplBatch& b, double kl_weight) {
  const auto [mu, logvar] = vpl_encode(p, b.ctx_chosen, b.ctx_rejected, b.ctx_mask);
  const at::Tensor z = (mu + at::exp(0.5 * logvar) * b.eps).index_select(0, b.group);  // [M, Z]
  const at::Tensor margin = vpl_reward(p, b.chosen, z) - vpl_reward(p, b.rejected, z);
  const at::Tensor kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean();
  return at::softplus(-margin).mean() + kl_weight * kl;
}

namespace detail {

namespace {

constexpr const char* kFn = "training.vpl";
using Groups = std::vector<std::vector<int64_t>>;  // per user: positions of their pairs

Groups group_by_user(const at::Tensor& user, int64_t n_users) {
  Groups groups(static_cast<size_t>(n_users));
  const auto* u = user.data_ptr<int64_t>();
  for (int64_t i = 0; i < user.numel(); ++i) groups[static_cast<size_t>(u[i])].push_back(i);
  return groups;
}

class VplReward final : public PersonalizedReward {
 public:
  std::string method() const override { return "vpl"; }

  FitReport fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& o) override {
    const double t0 = now_seconds();
    const PairData data = prepare_fit(pairs, n_users, o, "training.vpl.fit");
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
    const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen);
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
    user_z_ = encode_users(group_by_user(data.user, n_users_), data.chosen, data.rejected);
    report.seconds = now_seconds() - t0;
    return report;
  }

  at::Tensor user_state(int64_t user) const override {
    PALIGN_CHECK(fitted(), ErrorCode::kInvalidArgument, "[", kFn, ".user_state] the head is not fitted");
    PALIGN_CHECK(user >= 0 && user < n_users_, ErrorCode::kInvalidArgument, "[", kFn, ".user_state] user ", user,
                 " is outside [0, ", n_users_, ")");
    return user_z_[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = prepare_new_user(chosen, rejected, dim_, "training.vpl.new_user_state");
    at::NoGradGuard no_grad;
    if (c.size(0) == 0) return at::zeros({latent_});
    return vpl_encode(p_, c.unsqueeze(0), r.unsqueeze(0), at::ones({1, c.size(0)})).first[0].clone();
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = prepare_features(x, dim_, state, latent_, "training.vpl.score");
    at::NoGradGuard no_grad;
    return vpl_reward(p_, f, state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    std::vector<std::pair<std::string, at::Tensor>> tensors = {
        {"enc_w1", p_.enc_w1}, {"enc_b1", p_.enc_b1}, {"enc_w2", p_.enc_w2}, {"enc_b2", p_.enc_b2},
        {"w", p_.w},           {"mix", p_.mix},       {"rew_w1", p_.rew_w1}, {"rew_b1", p_.rew_b1},
        {"out", p_.out},       {"user_z", user_z_}};
    write_reward_head(
        dir, method(), dim_, n_users_,
        {{"latent_dim", latent_}, {"hidden", hidden_}, {"kl_weight", kl_weight_}, {"context_pairs", context_pairs_}},
        tensors);
  }

  void load(const json& meta, const runtime::SafetensorsFile& file, const std::filesystem::path& path) {
    dim_ = json_field<int64_t>(meta, "dim", path);
    n_users_ = json_field<int64_t>(meta, "n_users", path);
    latent_ = json_field<int64_t>(meta, "latent_dim", path);
    hidden_ = json_field<int64_t>(meta, "hidden", path);
    kl_weight_ = json_field<double>(meta, "kl_weight", path);
    context_pairs_ = json_field<int64_t>(meta, "context_pairs", path);
    PALIGN_CHECK(dim_ > 0 && n_users_ > 0 && latent_ > 0 && hidden_ > 0, ErrorCode::kInvalidArgument,
                 "[training.reward_head.load] ", path.string(), " has invalid dimensions");
    const int64_t D = dim_, Z = latent_, H = hidden_;
    p_.enc_w1 = load_tensor(file, "enc_w1", {H, 2 * D});
    p_.enc_b1 = load_tensor(file, "enc_b1", {H});
    p_.enc_w2 = load_tensor(file, "enc_w2", {2 * Z, H});
    p_.enc_b2 = load_tensor(file, "enc_b2", {2 * Z});
    p_.w = load_tensor(file, "w", {D});
    p_.mix = load_tensor(file, "mix", {D, Z});
    p_.rew_w1 = load_tensor(file, "rew_w1", {H, D + Z});
    p_.rew_b1 = load_tensor(file, "rew_b1", {H});
    p_.out = load_tensor(file, "out", {H});
    user_z_ = load_tensor(file, "user_z", {n_users_, Z});
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
      const at::Tensor mu = vpl_encode(p_, chosen.index_select(0, index).view({G, longest, dim_}),
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
    return vpl_reward(p_, chosen, zu) - vpl_reward(p_, rejected, zu);
  }

  VplParams p_;
  at::Tensor user_z_;  // [U, Z]
  int64_t latent_ = 0, hidden_ = 0, context_pairs_ = 0;
  double kl_weight_ = 0;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_vpl() { return std::make_unique<VplReward>(); }

std::unique_ptr<PersonalizedReward> load_vpl(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  auto head = std::make_unique<VplReward>();
  head->load(meta, file, path);
  return head;
}

}  // namespace detail

}  // namespace palign::training
