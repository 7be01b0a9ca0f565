// "pal": PAL-B (Chen et al. 2024, "PAL: Pluralistic Alignment Framework for Learning from Heterogeneous
// Preferences"), here over fixed features and without PAL's shared projection: P prototype rewards r_p(x) = w_p·x,
// and each user mixes them with α_u = softmax(a_u): r_u(x) = Σ_p α_up r_p(x) (or, RewardFitOptions::pal_mixture
// "signed", α_u = a_u: users outside the prototypes' convex hull).
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include <cmath>

#include "palign/base/timer.h"
#include "reward_heads_internal.h"

namespace palign::training {

at::Tensor pal_loss(const scoring::PalParams& p, const at::Tensor& diff, const at::Tensor& user) {
  const at::Tensor alpha = p.alpha(p.logits.index_select(0, user));         // [N, P]
  const at::Tensor per_prototype = diff.matmul(p.prototypes.t());           // [N, P]
  return at::softplus(-(alpha * per_prototype).sum(1)).mean();
}

namespace detail {

FittedReward fit_pal(const PairData& data, const RewardFitOptions& o) {
  const auto t0 = Clock::now();
  c10::InferenceMode grad_on(false);
  at::AutoGradMode grad(true);
  FitReport report;
  report.skipped_pairs = data.skipped;
  const int64_t dim = data.diff.size(1), n_users = data.n_users;
  at::Generator gen = make_generator(o.seed);
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  // Distinct random prototypes and mixtures break the symmetry between the prototypes.
  scoring::PalParams p;
  p.mixture = o.pal_mixture;
  PALIGN_CHECK(p.mixture == "simplex" || p.mixture == "signed", ErrorCode::kInvalidArgument,
               "[training.pal] --pal-mixture must be simplex or signed, got '", p.mixture, "'");
  p.prototypes = (at::randn({o.n_prototypes, dim}, gen, opts) / std::sqrt(static_cast<double>(dim))).requires_grad_();
  p.logits = at::randn({n_users, o.n_prototypes}, gen, opts).requires_grad_();
  const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen, data.group);
  report.valid_pairs = valid.numel();
  const at::Tensor train_diff = data.diff.index_select(0, train), train_user = data.user.index_select(0, train);
  const at::Tensor valid_diff = data.diff.index_select(0, valid), valid_user = data.user.index_select(0, valid);
  auto margins = [&p](const at::Tensor& diff, const at::Tensor& user) {
    const at::Tensor alpha = p.alpha(p.logits.index_select(0, user));
    return (alpha * diff.matmul(p.prototypes.t())).sum(1);
  };

  TrainLoop loop;
  loop.n_items = train.size(0);
  loop.items_per_step = o.batch;
  loop.loss = [&](const at::Tensor& items) {
    return pal_loss(p, train_diff.index_select(0, items), train_user.index_select(0, items));
  };
  if (valid.numel() > 0)
    loop.valid = [&] {
      const at::Tensor m = margins(valid_diff, valid_user);
      return std::make_pair(bt_nll(m), bt_accuracy(m));
    };
  // Only the prototypes are decayed: decaying the logits would pull every α toward uniform, which fits as well
  // with prototypes pushed outside the users' convex hull and so blurs them.
  report.epochs = run_training({p.prototypes}, {p.logits}, o, loop, gen, "fit pal");
  p.prototypes = p.prototypes.detach();
  p.logits = p.logits.detach();
  at::NoGradGuard no_grad;
  report.train_accuracy = bt_accuracy(margins(train_diff, train_user));
  const at::Tensor m = margins(valid_diff, valid_user);
  report.valid_accuracy = bt_accuracy(m);
  report.valid_loss = bt_nll(m);
  report.seconds = seconds_since(t0);
  return {
      scoring::make_pal_reward(std::move(p), {.adapt_steps = o.adapt_steps, .adapt_l2 = o.adapt_l2, .adapt_lr = o.lr}),
      report};
}

}  // namespace detail

}  // namespace palign::training
