// "pal": PAL-B (Chen et al. 2024, "PAL: Pluralistic Alignment Framework for Learning from Heterogeneous
// Preferences"), here over fixed features and without PAL's shared projection: P prototype rewards r_p(x) = w_p·x,
// and each user mixes them with α_u = softmax(a_u) (PalParams::mixture "simplex"; "signed": α_u = a_u, for users
// outside the prototypes' hull). A new user's logits are fitted by Adam on their pairs with the prototypes frozen,
// from the logits of the population's mean α, with a small L2 pull toward them.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "personalized_internal.h"

namespace palign::scoring {

using nlohmann::json;

at::Tensor PalParams::alpha(const at::Tensor& a) const { return mixture == "signed" ? a : at::softmax(a, a.dim() - 1); }

namespace {

class PalReward final : public PersonalizedReward {
 public:
  PalReward(PalParams p, NewUserFit fit)
      : PersonalizedReward(p.prototypes.size(1), p.logits.size(0)), p_(std::move(p)), fit_(fit) {}

  std::string method() const override { return "pal"; }

  at::Tensor user_state(int64_t user) const override {
    detail::check_user(user, n_users(), "scoring.pal.user_state");
    return p_.alpha(p_.logits[user]);
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = detail::prepare_new_user(chosen, rejected, dim(), "scoring.pal.new_user_state");
    const at::Tensor population = p_.alpha(p_.logits).mean(0);  // the population's mean α [P]
    if (c.size(0) == 0 || fit_.adapt_steps == 0) return population;
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    const at::Tensor per_prototype = (c - r).matmul(p_.prototypes.t()).clone();  // [K, P]
    // The logits whose α is the population's mean.
    const at::Tensor anchor = (p_.mixture == "signed" ? population : population.clamp_min(1e-6).log()).clone();
    at::Tensor a = anchor.clone().requires_grad_();
    detail::adapt(
        {a},
        [&] {
          const at::Tensor margin = per_prototype.matmul(p_.alpha(a));
          return at::softplus(-margin).mean() + fit_.adapt_l2 * (a - anchor).pow(2).sum();
        },
        fit_.adapt_steps, fit_.adapt_lr);
    return p_.alpha(a.detach());
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = detail::prepare_features(x, dim(), state, p_.prototypes.size(0), "scoring.pal.score");
    at::NoGradGuard no_grad;
    return f.matmul(p_.prototypes.t()).matmul(state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    detail::write_reward_head(dir, method(), dim(), n_users(),
                              {{"n_prototypes", p_.prototypes.size(0)},
                               {"mixture", p_.mixture},
                               {"adapt_steps", fit_.adapt_steps},
                               {"adapt_l2", fit_.adapt_l2},
                               {"adapt_lr", fit_.adapt_lr}},
                              {{"prototypes", p_.prototypes}, {"logits", p_.logits}});
  }

 private:
  PalParams p_;
  NewUserFit fit_;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_pal_reward(PalParams params, NewUserFit new_user) {
  PALIGN_CHECK(params.mixture == "simplex" || params.mixture == "signed", ErrorCode::kInvalidArgument,
               "[scoring.pal] mixture \"", params.mixture, "\" is neither \"simplex\" nor \"signed\"");
  PALIGN_ASSERT(params.prototypes.dim() == 2 && params.logits.dim() == 2 &&
                    params.logits.size(1) == params.prototypes.size(0) && params.logits.size(0) >= 1,
                "pal parameters of inconsistent shapes");
  for (at::Tensor* t : {&params.prototypes, &params.logits}) *t = t->detach().to(at::kFloat);
  return std::make_unique<PalReward>(std::move(params), new_user);
}

namespace detail {

std::unique_ptr<PersonalizedReward> load_pal(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  const auto dim = json_field<int64_t>(meta, "dim", path), n_users = json_field<int64_t>(meta, "n_users", path);
  const auto n_prototypes = json_field<int64_t>(meta, "n_prototypes", path);
  NewUserFit fit{.adapt_steps = json_field<int64_t>(meta, "adapt_steps", path),
                 .adapt_l2 = json_field<double>(meta, "adapt_l2", path),
                 .adapt_lr = json_field<double>(meta, "adapt_lr", path)};
  PALIGN_CHECK(dim > 0 && n_users > 0 && n_prototypes > 0 && fit.adapt_steps >= 0, ErrorCode::kInvalidArgument,
               "[scoring.reward_head.load] ", path.string(), " has invalid dimensions");
  // Heads written before the mixture was a choice are simplex heads.
  const std::string mixture = meta.contains("mixture") ? json_field<std::string>(meta, "mixture", path) : "simplex";
  PALIGN_CHECK(mixture == "simplex" || mixture == "signed", ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               path.string(), " has mixture \"", mixture, "\"; it must be \"simplex\" or \"signed\"");
  PalParams p{.prototypes = load_tensor(file, "prototypes", {n_prototypes, dim}),
              .logits = load_tensor(file, "logits", {n_users, n_prototypes}),
              .mixture = mixture};
  return make_pal_reward(std::move(p), fit);
}

}  // namespace detail

}  // namespace palign::scoring
