// "vpl": variational preference learning (Poddar et al. 2024, "Personalizing Reinforcement Learning from Human
// Feedback with Variational Preference Learning"), here over fixed features. A set encoder maps a user's labelled
// pairs to q(z) = N(μ, σ²) over a latent z [Z]; the reward r(x, z) is conditioned on it (formulas in
// personalized_reward.h). A user's latent is μ of their pairs; with no pairs it is the prior mean, z = 0.
#include <ATen/ATen.h>

#include "personalized_internal.h"

namespace palign::scoring {

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

namespace {

std::vector<at::Tensor*> tensors_of(VplParams& p) {
  return {&p.enc_w1, &p.enc_b1, &p.enc_w2, &p.enc_b2, &p.w, &p.mix, &p.rew_w1, &p.rew_b1, &p.out};
}

class VplReward final : public PersonalizedReward {
 public:
  VplReward(VplParams p, at::Tensor user_z, double kl_weight, int64_t context_pairs)
      : PersonalizedReward(p.w.size(0), user_z.size(0)),
        p_(std::move(p)),
        user_z_(std::move(user_z)),
        kl_weight_(kl_weight),
        context_pairs_(context_pairs) {}

  std::string method() const override { return "vpl"; }

  at::Tensor user_state(int64_t user) const override {
    detail::check_user(user, n_users(), "scoring.vpl.user_state");
    return user_z_[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = detail::prepare_new_user(chosen, rejected, dim(), "scoring.vpl.new_user_state");
    at::NoGradGuard no_grad;
    if (c.size(0) == 0) return at::zeros({latent()});
    return vpl_encode(p_, c.unsqueeze(0), r.unsqueeze(0), at::ones({1, c.size(0)})).first[0].clone();
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = detail::prepare_features(x, dim(), state, latent(), "scoring.vpl.score");
    at::NoGradGuard no_grad;
    return vpl_reward(p_, f, state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    std::vector<std::pair<std::string, at::Tensor>> tensors = {
        {"enc_w1", p_.enc_w1}, {"enc_b1", p_.enc_b1}, {"enc_w2", p_.enc_w2}, {"enc_b2", p_.enc_b2},
        {"w", p_.w},           {"mix", p_.mix},       {"rew_w1", p_.rew_w1}, {"rew_b1", p_.rew_b1},
        {"out", p_.out},       {"user_z", user_z_}};
    detail::write_reward_head(dir, method(), dim(), n_users(),
                              {{"latent_dim", latent()},
                               {"hidden", p_.out.size(0)},
                               {"kl_weight", kl_weight_},
                               {"context_pairs", context_pairs_}},
                              tensors);
  }

 private:
  int64_t latent() const { return p_.mix.size(1); }

  VplParams p_;
  at::Tensor user_z_;  // [U, Z]
  double kl_weight_ = 0;
  int64_t context_pairs_ = 0;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_vpl_reward(VplParams params, at::Tensor user_z, double kl_weight,
                                                    int64_t context_pairs) {
  PALIGN_ASSERT(params.w.dim() == 1 && params.mix.dim() == 2 && params.out.dim() == 1 && user_z.dim() == 2 &&
                    user_z.size(1) == params.mix.size(1) && user_z.size(0) >= 1,
                "vpl parameters of inconsistent shapes");
  for (at::Tensor* t : tensors_of(params)) *t = t->detach().to(at::kFloat);
  return std::make_unique<VplReward>(std::move(params), user_z.detach().to(at::kFloat), kl_weight, context_pairs);
}

namespace detail {

std::unique_ptr<PersonalizedReward> load_vpl(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  const auto D = json_field<int64_t>(meta, "dim", path), U = json_field<int64_t>(meta, "n_users", path);
  const auto Z = json_field<int64_t>(meta, "latent_dim", path), H = json_field<int64_t>(meta, "hidden", path);
  const auto kl_weight = json_field<double>(meta, "kl_weight", path);
  const auto context_pairs = json_field<int64_t>(meta, "context_pairs", path);
  PALIGN_CHECK(D > 0 && U > 0 && Z > 0 && H > 0, ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               path.string(), " has invalid dimensions");
  VplParams p{.enc_w1 = load_tensor(file, "enc_w1", {H, 2 * D}),
              .enc_b1 = load_tensor(file, "enc_b1", {H}),
              .enc_w2 = load_tensor(file, "enc_w2", {2 * Z, H}),
              .enc_b2 = load_tensor(file, "enc_b2", {2 * Z}),
              .w = load_tensor(file, "w", {D}),
              .mix = load_tensor(file, "mix", {D, Z}),
              .rew_w1 = load_tensor(file, "rew_w1", {H, D + Z}),
              .rew_b1 = load_tensor(file, "rew_b1", {H}),
              .out = load_tensor(file, "out", {H})};
  return make_vpl_reward(std::move(p), load_tensor(file, "user_z", {U, Z}), kl_weight, context_pairs);
}

}  // namespace detail

}  // namespace palign::scoring
