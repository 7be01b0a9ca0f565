// "linear": per-user MAP Bradley–Terry weights over K features (e.g. a multi-objective model's K scores). First the
// population weights w_pop = argmin Σ_i softplus(−w·d_i) + l2/2 ‖w‖² on all pairs (d = chosen − rejected,
// l2 = 1e-2 + weight_decay · N), then each user's w_u = argmin Σ_{i∈u} softplus(−w·d_i) + λ/2 ‖w − w_pop‖²
// (λ = prior_weight), both by damped Newton steps in double precision (scoring::linear_map_fit).
#include <torch/torch.h>

#include <cmath>

#include "palign/base/timer.h"
#include "reward_heads_internal.h"

namespace palign::training::detail {

namespace {

struct LinearWeights {
  at::Tensor pop, users;  // [D], [U, D] float32
};

// Population then per-user MAP weights on diff [N, D] of users [N].
LinearWeights fit_all(const at::Tensor& diff, const at::Tensor& user, int64_t n_users, const RewardFitOptions& o,
                      int64_t* steps) {
  const int64_t n = diff.size(0), dim = diff.size(1);
  const double l2 = 1e-2 + o.weight_decay * static_cast<double>(n);
  const at::Tensor pop = scoring::linear_map_fit(diff, at::zeros({dim}, at::kDouble), l2, steps);
  at::Tensor users = pop.unsqueeze(0).repeat({n_users, 1});
  const at::Tensor order = user.argsort();
  const at::Tensor sorted_diff = diff.index_select(0, order);
  const at::Tensor counts = at::bincount(user, {}, n_users);
  int64_t start = 0;
  for (int64_t u = 0; u < n_users; ++u) {
    const int64_t count = counts[u].item<int64_t>();
    if (count > 0) users[u] = scoring::linear_map_fit(sorted_diff.slice(0, start, start + count), pop, o.prior_weight);
    start += count;
  }
  return {pop.to(at::kFloat), users.to(at::kFloat)};
}

at::Tensor margins(const LinearWeights& w, const at::Tensor& diff, const at::Tensor& user) {
  return (diff * w.users.index_select(0, user)).sum(1);
}

}  // namespace

FittedReward fit_linear(const PairData& data, const RewardFitOptions& o) {
  const auto t0 = Clock::now();
  at::NoGradGuard no_grad;
  FitReport report;
  report.skipped_pairs = data.skipped;
  at::Generator gen = make_generator(o.seed);
  const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen, data.group);
  report.valid_pairs = valid.numel();
  if (valid.numel() > 0) {
    // Held-out figures come from a fit on the train share; the kept model is then refitted on all pairs, since
    // Newton's method has nothing to stop early.
    const LinearWeights part =
        fit_all(data.diff.index_select(0, train), data.user.index_select(0, train), data.n_users, o, nullptr);
    const at::Tensor m = margins(part, data.diff.index_select(0, valid), data.user.index_select(0, valid));
    report.valid_accuracy = bt_accuracy(m);
    report.valid_loss = bt_nll(m);
  } else {
    report.valid_accuracy = report.valid_loss = std::nan("");
  }
  LinearWeights all = fit_all(data.diff, data.user, data.n_users, o, &report.epochs);
  report.train_accuracy = bt_accuracy(margins(all, data.diff, data.user));
  report.seconds = seconds_since(t0);
  return {scoring::make_linear_reward(std::move(all.pop), std::move(all.users), o.prior_weight), report};
}

}  // namespace palign::training::detail
