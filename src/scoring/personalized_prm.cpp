// "prm": personalized RLHF reward (Li et al. 2024, "Personalized Language Modeling from Personalized Human Feedback"),
// here over fixed features: r(x, u) = (w + B e_u)·x. Row U of the embedding table is the generic user, which serves
// users without pairs. A new user's embedding is fitted by Adam on their pairs with everything else frozen, from the
// generic embedding, with a small L2 pull toward it.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "personalized_internal.h"

namespace palign::scoring {

using nlohmann::json;

namespace {

class PrmReward final : public PersonalizedReward {
 public:
  PrmReward(PrmParams p, NewUserFit fit)
      : PersonalizedReward(p.w.size(0), p.embed.size(0) - 1), p_(std::move(p)), fit_(fit) {}

  std::string method() const override { return "prm"; }

  at::Tensor user_state(int64_t user) const override {
    detail::check_user(user, n_users(), "scoring.prm.user_state");
    return p_.embed[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = detail::prepare_new_user(chosen, rejected, dim(), "scoring.prm.new_user_state");
    const at::Tensor generic = p_.embed[n_users()];
    if (c.size(0) == 0 || fit_.adapt_steps == 0) return generic.clone();
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    const at::Tensor diff = (c - r).clone(), w = p_.w.clone(), mix = p_.mix.clone(), anchor = generic.clone();
    at::Tensor e = anchor.clone().requires_grad_();
    detail::adapt(
        {e},
        [&] {
          const at::Tensor margin = diff.matmul(w + mix.matmul(e));
          return at::softplus(-margin).mean() + fit_.adapt_l2 * (e - anchor).pow(2).sum();
        },
        fit_.adapt_steps, fit_.adapt_lr);
    return e.detach();
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = detail::prepare_features(x, dim(), state, p_.mix.size(1), "scoring.prm.score");
    at::NoGradGuard no_grad;
    return f.matmul(p_.w + p_.mix.matmul(state.to(at::kFloat)));
  }

  void save(const std::filesystem::path& dir) const override {
    detail::write_reward_head(dir, method(), dim(), n_users(),
                              {{"embed_dim", p_.mix.size(1)},
                               {"adapt_steps", fit_.adapt_steps},
                               {"adapt_l2", fit_.adapt_l2},
                               {"adapt_lr", fit_.adapt_lr}},
                              {{"w", p_.w}, {"mix", p_.mix}, {"embed", p_.embed}});
  }

 private:
  PrmParams p_;
  NewUserFit fit_;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_prm_reward(PrmParams params, NewUserFit new_user) {
  PALIGN_ASSERT(params.w.dim() == 1 && params.mix.dim() == 2 && params.embed.dim() == 2 &&
                    params.mix.size(0) == params.w.size(0) && params.embed.size(1) == params.mix.size(1) &&
                    params.embed.size(0) >= 2,
                "prm parameters of inconsistent shapes");
  for (at::Tensor* t : {&params.w, &params.mix, &params.embed}) *t = t->detach().to(at::kFloat);
  return std::make_unique<PrmReward>(std::move(params), new_user);
}

namespace detail {

std::unique_ptr<PersonalizedReward> load_prm(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  const auto dim = json_field<int64_t>(meta, "dim", path), n_users = json_field<int64_t>(meta, "n_users", path);
  const auto embed_dim = json_field<int64_t>(meta, "embed_dim", path);
  NewUserFit fit{.adapt_steps = json_field<int64_t>(meta, "adapt_steps", path),
                 .adapt_l2 = json_field<double>(meta, "adapt_l2", path),
                 .adapt_lr = json_field<double>(meta, "adapt_lr", path)};
  PALIGN_CHECK(dim > 0 && n_users > 0 && embed_dim > 0 && fit.adapt_steps >= 0, ErrorCode::kInvalidArgument,
               "[scoring.reward_head.load] ", path.string(), " has invalid dimensions");
  PrmParams p{.w = load_tensor(file, "w", {dim}),
              .mix = load_tensor(file, "mix", {dim, embed_dim}),
              .embed = load_tensor(file, "embed", {n_users + 1, embed_dim})};
  return make_prm_reward(std::move(p), fit);
}

}  // namespace detail

}  // namespace palign::scoring
