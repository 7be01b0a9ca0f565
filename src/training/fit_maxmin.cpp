// "maxmin": MaxMin-RLHF's mixture of K Bradley–Terry rewards (Chakraborty et al. 2024), fitted by hard EM over users
// (maxmin_em, reward_heads.h): each head the MAP fit of its users' pairs (L2 = prior_weight), each user in the group
// whose head makes their labels most likely. K is given (groups) or chosen as the one of 1..max_groups with the lowest
// held-out loss, each held-out pair scored by its user's group from the fit on the training share (a user with no
// training pairs: the largest group). The kept heads are refitted on all pairs at that K.
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "palign/base/timer.h"
#include "reward_heads_internal.h"

namespace palign::training {

namespace {

// Σ over each user's pairs of log σ(w_k · d_i): [n_users, K] float64.
at::Tensor user_loglik(const at::Tensor& diff, const at::Tensor& user, const at::Tensor& heads, int64_t n_users) {
  const at::Tensor ll = at::log_sigmoid(diff.matmul(heads.t()));  // [N, K]
  return at::zeros({n_users, heads.size(0)}, at::kDouble).index_add_(0, user, ll);
}

}  // namespace

MaxminEm maxmin_em(const at::Tensor& diff_in, const std::vector<int64_t>& user_in, int64_t n_users, int64_t groups,
                   double l2, int64_t iterations, int64_t restarts, uint64_t seed) {
  PALIGN_CHECK(groups >= 1 && restarts >= 1 && iterations >= 1 && l2 > 0 && n_users >= 1, ErrorCode::kInvalidArgument,
               "[training.maxmin] groups, restarts, iterations, n_users must be >= 1 and "
               "l2 > 0");
  PALIGN_CHECK(diff_in.dim() == 2 && diff_in.size(0) == std::ssize(user_in), ErrorCode::kInvalidArgument,
               "[training.maxmin] ", diff_in.size(0), " pairs but ", user_in.size(), " users of pairs");
  at::NoGradGuard no_grad;
  const at::Tensor diff = diff_in.to(at::kDouble).contiguous();
  const at::Tensor user = at::tensor(user_in, at::kLong);
  const int64_t dim = diff.size(1);
  const at::Tensor has_pairs = at::bincount(user, {}, n_users) > 0;
  MaxminEm best;
  best.loglik = -INFINITY;
  for (int64_t r = 0; r < restarts; ++r) {
    std::mt19937_64 rng(seed + static_cast<uint64_t>(r));
    std::vector<int64_t> assignment(static_cast<size_t>(n_users));
    for (auto& a : assignment) a = static_cast<int64_t>(rng() % static_cast<uint64_t>(groups));
    at::Tensor heads = at::zeros({groups, dim}, at::kDouble);
    int64_t it = 0;
    for (; it < iterations; ++it) {
      // M: each group's head on its users' pairs.
      const at::Tensor group_of_pair = at::tensor(assignment, at::kLong).index_select(0, user);
      for (int64_t k = 0; k < groups; ++k) {
        at::Tensor rows = (group_of_pair == k).nonzero().squeeze(1);
        if (rows.numel() == 0) {
          // An empty group takes the user the current heads explain worst.
          const at::Tensor ll = user_loglik(diff, user, heads, n_users).amax(1);
          const int64_t worst = at::where(has_pairs, ll, at::full_like(ll, INFINITY)).argmin().item<int64_t>();
          assignment[static_cast<size_t>(worst)] = k;
          rows = (user == worst).nonzero().squeeze(1);
        }
        heads[k] = scoring::linear_map_fit(diff.index_select(0, rows), at::zeros({dim}, at::kDouble), l2);
      }
      // E: each user to the head that explains their labels best.
      const at::Tensor best_group = user_loglik(diff, user, heads, n_users).argmax(1);
      bool moved = false;
      for (int64_t u = 0; u < n_users; ++u) {
        if (!has_pairs[u].item<bool>()) continue;
        const int64_t g = best_group[u].item<int64_t>();
        moved |= g != assignment[static_cast<size_t>(u)];
        assignment[static_cast<size_t>(u)] = g;
      }
      if (!moved) break;
    }
    for (int64_t u = 0; u < n_users; ++u)
      if (!has_pairs[u].item<bool>()) assignment[static_cast<size_t>(u)] = 0;
    const at::Tensor ll = user_loglik(diff, user, heads, n_users);
    double total = 0;
    for (int64_t u = 0; u < n_users; ++u) total += ll[u][assignment[static_cast<size_t>(u)]].item<double>();
    if (total > best.loglik) best = {heads, assignment, total, it + 1};
  }
  return best;
}

namespace detail {

namespace {

at::Tensor margins(const MaxminEm& em, const at::Tensor& diff, const at::Tensor& user) {
  const at::Tensor group = at::tensor(em.assignment, at::kLong).index_select(0, user);
  return (diff.to(at::kDouble) * em.heads.index_select(0, group)).sum(1).to(at::kFloat);
}

MaxminEm run_em(const PairData& data, const at::Tensor& rows, int64_t groups, const RewardFitOptions& o) {
  const at::Tensor user = data.user.index_select(0, rows).contiguous();
  const std::vector<int64_t> users(user.data_ptr<int64_t>(), user.data_ptr<int64_t>() + user.numel());
  MaxminEm em = maxmin_em(data.diff.index_select(0, rows), users, data.n_users, groups, o.prior_weight, o.em_iterations,
                          o.em_restarts, o.seed);
  // Users without pairs here join the largest group.
  const at::Tensor sizes = at::bincount(at::tensor(em.assignment, at::kLong), {}, groups);
  const int64_t largest = sizes.argmax().item<int64_t>();
  const at::Tensor has_pairs = at::bincount(user, {}, data.n_users) > 0;
  for (int64_t u = 0; u < data.n_users; ++u)
    if (!has_pairs[u].item<bool>()) em.assignment[static_cast<size_t>(u)] = largest;
  return em;
}

}  // namespace

FittedReward fit_maxmin(const PairData& data, const RewardFitOptions& o) {
  const auto t0 = Clock::now();
  at::NoGradGuard no_grad;
  FitReport report;
  report.skipped_pairs = data.skipped;
  at::Generator gen = make_generator(o.seed);
  const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen, data.group);
  report.valid_pairs = valid.numel();
  const at::Tensor valid_diff = data.diff.index_select(0, valid), valid_user = data.user.index_select(0, valid);
  int64_t groups = o.groups > 0 ? o.groups : 1;
  report.valid_accuracy = report.valid_loss = std::nan("");
  if (valid.numel() > 0) {
    double best = INFINITY;
    for (int64_t k = o.groups > 0 ? o.groups : 1; k <= (o.groups > 0 ? o.groups : o.max_groups); ++k) {
      const MaxminEm em = run_em(data, train, k, o);
      const at::Tensor m = margins(em, valid_diff, valid_user);
      const double loss = bt_nll(m);
      if (o.groups == 0) report.valid_loss_by_groups.push_back(loss);
      if (loss < best) best = loss, groups = k, report.valid_loss = loss, report.valid_accuracy = bt_accuracy(m);
    }
  }
  const MaxminEm em = run_em(data, at::arange(data.diff.size(0), at::kLong), groups, o);
  report.groups = groups;
  report.epochs = em.iterations;
  report.train_accuracy = bt_accuracy(margins(em, data.diff, data.user));
  report.seconds = seconds_since(t0);
  return {scoring::make_maxmin_reward({.heads = em.heads, .assignment = at::tensor(em.assignment, at::kLong)}), report};
}

}  // namespace detail

}  // namespace palign::training
