// "linear": per-user MAP Bradley–Terry weights over K features (e.g. a multi-objective model's K scores). First the
// population weights w_pop = argmin Σ_i softplus(−w·d_i) + l2/2 ‖w‖² on all pairs (d = chosen − rejected,
// l2 = 1e-2 + weight_decay · N), then each user's w_u = argmin Σ_{i∈u} softplus(−w·d_i) + λ/2 ‖w − w_pop‖²
// (λ = prior_weight), both by damped Newton steps in double precision. A user without pairs gets w_pop.
#include <torch/torch.h>

#include <cmath>

#include "palign/base/error.h"
#include "reward_heads_internal.h"

namespace palign::training {

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

namespace detail {

namespace {

constexpr const char* kFn = "training.linear";

class LinearReward final : public PersonalizedReward {
 public:
  std::string method() const override { return "linear"; }

  FitReport fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& o) override {
    const double t0 = now_seconds();
    const PairData data = prepare_fit(pairs, n_users, o, "training.linear.fit");
    at::NoGradGuard no_grad;
    FitReport report;
    report.skipped_pairs = data.skipped;
    prior_weight_ = o.prior_weight;
    at::Generator gen = make_generator(o.seed);
    const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen);
    if (valid.numel() > 0) {
      // Held-out figures come from a fit on the train share; the kept model is then refitted on all pairs, since
      // Newton's method has nothing to stop early.
      fit_all(data.diff.index_select(0, train), data.user.index_select(0, train), data.n_users, o, nullptr);
      const at::Tensor m = margins(data.diff.index_select(0, valid), data.user.index_select(0, valid));
      report.valid_accuracy = bt_accuracy(m);
      report.valid_loss = bt_nll(m);
    } else {
      report.valid_accuracy = report.valid_loss = std::nan("");
    }
    fit_all(data.diff, data.user, data.n_users, o, &report.epochs);
    report.train_accuracy = bt_accuracy(margins(data.diff, data.user));
    report.seconds = now_seconds() - t0;
    return report;
  }

  at::Tensor user_state(int64_t user) const override {
    PALIGN_CHECK(fitted(), ErrorCode::kInvalidArgument, "[", kFn, ".user_state] the head is not fitted");
    PALIGN_CHECK(user >= 0 && user < n_users_, ErrorCode::kInvalidArgument, "[", kFn, ".user_state] user ", user,
                 " is outside [0, ", n_users_, ")");
    return w_users_[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = prepare_new_user(chosen, rejected, dim_, "training.linear.new_user_state");
    at::NoGradGuard no_grad;
    if (c.size(0) == 0) return w_pop_.clone();
    return linear_map_fit(c - r, w_pop_, prior_weight_).to(at::kFloat);
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = prepare_features(x, dim_, state, dim_, "training.linear.score");
    at::NoGradGuard no_grad;
    return f.matmul(state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    write_reward_head(dir, method(), dim_, n_users_, {{"prior_weight", prior_weight_}},
                      {{"w_pop", w_pop_}, {"w_users", w_users_}});
  }

  void load(const json& meta, const runtime::SafetensorsFile& file, const std::filesystem::path& path) {
    dim_ = json_field<int64_t>(meta, "dim", path);
    n_users_ = json_field<int64_t>(meta, "n_users", path);
    prior_weight_ = json_field<double>(meta, "prior_weight", path);
    PALIGN_CHECK(dim_ > 0 && n_users_ > 0 && prior_weight_ > 0, ErrorCode::kInvalidArgument,
                 "[training.reward_head.load] ", path.string(), " has invalid dimensions or prior_weight");
    w_pop_ = load_tensor(file, "w_pop", {dim_});
    w_users_ = load_tensor(file, "w_users", {n_users_, dim_});
  }

 private:
  // Population then per-user MAP weights on diff [N, D] of users [N].
  void fit_all(const at::Tensor& diff, const at::Tensor& user, int64_t n_users, const RewardFitOptions& o,
               int64_t* steps) {
    const int64_t n = diff.size(0);
    dim_ = diff.size(1);
    n_users_ = n_users;
    const double l2 = 1e-2 + o.weight_decay * static_cast<double>(n);
    const at::Tensor pop = linear_map_fit(diff, at::zeros({dim_}, at::kDouble), l2, steps);
    at::Tensor users = pop.unsqueeze(0).repeat({n_users, 1});
    const at::Tensor order = user.argsort();
    const at::Tensor sorted_diff = diff.index_select(0, order);
    const at::Tensor counts = at::bincount(user, {}, n_users);
    int64_t start = 0;
    for (int64_t u = 0; u < n_users; ++u) {
      const int64_t count = counts[u].item<int64_t>();
      if (count > 0) users[u] = linear_map_fit(sorted_diff.slice(0, start, start + count), pop, o.prior_weight);
      start += count;
    }
    w_pop_ = pop.to(at::kFloat);
    w_users_ = users.to(at::kFloat);
  }

  at::Tensor margins(const at::Tensor& diff, const at::Tensor& user) const {
    return (diff * w_users_.index_select(0, user)).sum(1);
  }

  double prior_weight_ = 1.0;
  at::Tensor w_pop_;    // [D]
  at::Tensor w_users_;  // [U, D]
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_linear() { return std::make_unique<LinearReward>(); }

std::unique_ptr<PersonalizedReward> load_linear(const json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path) {
  auto head = std::make_unique<LinearReward>();
  head->load(meta, file, path);
  return head;
}

}  // namespace detail

}  // namespace palign::training
