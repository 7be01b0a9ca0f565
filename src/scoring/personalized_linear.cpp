// "linear": per-user MAP Bradley–Terry weights over K features (e.g. a multi-objective model's K scores): a user's
// w_u = argmin Σ_{i∈u} softplus(−w·d_i) + λ/2 ‖w − w_pop‖² (d = chosen − rejected, λ = prior_weight) by damped Newton
// steps in double precision. A user without pairs gets w_pop.
#include <ATen/ATen.h>

#include <cmath>

#include "personalized_internal.h"

namespace palign::scoring {

using nlohmann::json;

double linear_map_objective(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior, double prior_weight) {
  const at::Tensor d = diff.to(at::kDouble), wd = w.to(at::kDouble), p = prior.to(at::kDouble);
  return (at::softplus(-d.matmul(wd)).sum() + 0.5 * prior_weight * (wd - p).pow(2).sum()).item<double>();
}

at::Tensor linear_map_gradient(const at::Tensor& w, const at::Tensor& diff, const at::Tensor& prior,
                               double prior_weight) {
  const at::Tensor d = diff.to(at::kDouble), wd = w.to(at::kDouble), p = prior.to(at::kDouble);
  // d/dw softplus(−w·d) = −σ(−w·d) d.
  return -d.t().matmul(at::sigmoid(-d.matmul(wd))) + prior_weight * (wd - p);
}

at::Tensor linear_map_fit(const at::Tensor& diff, const at::Tensor& prior, double prior_weight, int64_t* steps) {
  PALIGN_ASSERT(prior_weight > 0, "the MAP fit needs a positive prior weight");
  const at::Tensor d = diff.to(at::kDouble), p = prior.to(at::kDouble);
  const int64_t dim = p.size(0);
  const at::Tensor eye = at::eye(dim, at::kDouble);
  at::Tensor w = p.clone();
  double f = linear_map_objective(w, d, p, prior_weight);
  int64_t step = 0;
  for (; step < 100 && d.size(0) > 0; ++step) {
    const at::Tensor m = d.matmul(w);
    const at::Tensor grad = -d.t().matmul(at::sigmoid(-m)) + prior_weight * (w - p);
    const at::Tensor h = at::sigmoid(m) * at::sigmoid(-m);
    const at::Tensor hess = (d.t() * h).matmul(d) + prior_weight * eye;
    const at::Tensor delta = at::linalg_solve(hess, grad);
    // Backtracking keeps every step a descent step (plain Newton can overshoot on nearly separable pairs).
    double t = 1.0, f_new = f;
    at::Tensor w_new = w;
    for (int halving = 0; halving < 30; ++halving, t *= 0.5) {
      w_new = w - t * delta;
      f_new = linear_map_objective(w_new, d, p, prior_weight);
      if (f_new <= f) break;
    }
    const double change = (w_new - w).abs().max().item<double>();
    w = w_new;
    f = f_new;
    if (change < 1e-10) break;
  }
  if (steps) *steps = step;
  return w;
}

namespace {

class LinearReward final : public PersonalizedReward {
 public:
  LinearReward(at::Tensor w_pop, at::Tensor w_users, double prior_weight)
      : PersonalizedReward(w_pop.size(0), w_users.size(0)),
        w_pop_(std::move(w_pop)),
        w_users_(std::move(w_users)),
        prior_weight_(prior_weight) {}

  std::string method() const override { return "linear"; }

  at::Tensor user_state(int64_t user) const override {
    detail::check_user(user, n_users(), "scoring.linear.user_state");
    return w_users_[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = detail::prepare_new_user(chosen, rejected, dim(), "scoring.linear.new_user_state");
    at::NoGradGuard no_grad;
    if (c.size(0) == 0) return w_pop_.clone();
    return linear_map_fit(c - r, w_pop_, prior_weight_).to(at::kFloat);
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = detail::prepare_features(x, dim(), state, dim(), "scoring.linear.score");
    at::NoGradGuard no_grad;
    return f.matmul(state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    detail::write_reward_head(dir, method(), dim(), n_users(), {{"prior_weight", prior_weight_}},
                              {{"w_pop", w_pop_}, {"w_users", w_users_}});
  }

 private:
  at::Tensor w_pop_;    // [D]
  at::Tensor w_users_;  // [U, D]
  double prior_weight_ = 1.0;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_linear_reward(at::Tensor w_pop, at::Tensor w_users, double prior_weight) {
  PALIGN_ASSERT(w_pop.dim() == 1 && w_users.dim() == 2 && w_users.size(1) == w_pop.size(0) && w_users.size(0) >= 1 &&
                    prior_weight > 0,
                "linear parameters of inconsistent shapes");
  return std::make_unique<LinearReward>(w_pop.detach().to(at::kFloat), w_users.detach().to(at::kFloat), prior_weight);
}

namespace detail {

std::unique_ptr<PersonalizedReward> load_linear(const json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path) {
  const auto dim = json_field<int64_t>(meta, "dim", path), n_users = json_field<int64_t>(meta, "n_users", path);
  const auto prior_weight = json_field<double>(meta, "prior_weight", path);
  PALIGN_CHECK(dim > 0 && n_users > 0 && prior_weight > 0, ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               path.string(), " has invalid dimensions or prior_weight");
  return make_linear_reward(load_tensor(file, "w_pop", {dim}), load_tensor(file, "w_users", {n_users, dim}),
                            prior_weight);
}

}  // namespace detail

}  // namespace palign::scoring
