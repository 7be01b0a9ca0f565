// "prm": personalized RLHF reward (Li et al. 2024, "Personalized Language Modeling from Personalized Human Feedback"),
// here over fixed features: r(x, u) = (w + B e_u)·x with a shared weight w [D], a user embedding e_u [E] and a map
// B [D, E]. Row U of the embedding table is the generic user: during training each pair is assigned to it with
// probability generic_share, so it learns the population-average reward and serves users without pairs.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "palign/base/timer.h"
#include "reward_heads_internal.h"

namespace palign::training {

at::Tensor prm_loss(const scoring::PrmParams& p, const at::Tensor& diff, const at::Tensor& user) {
  const at::Tensor weights = p.w + p.embed.index_select(0, user).matmul(p.mix.t());  // [N, D]
  return at::softplus(-(weights * diff).sum(1)).mean();
}

namespace detail {

FittedReward fit_prm(const PairData& data, const RewardFitOptions& o) {
  const auto t0 = Clock::now();
  c10::InferenceMode grad_on(false);
  at::AutoGradMode grad(true);
  FitReport report;
  report.skipped_pairs = data.skipped;
  const int64_t dim = data.diff.size(1), n_users = data.n_users;
  at::Generator gen = make_generator(o.seed);
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  scoring::PrmParams p;
  p.w = at::zeros({dim}, opts).requires_grad_();
  p.mix = (at::randn({dim, o.embed_dim}, gen, opts) * 0.1).requires_grad_();
  p.embed = (at::randn({n_users + 1, o.embed_dim}, gen, opts) * 0.1).requires_grad_();
  const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen, data.group);
  report.valid_pairs = valid.numel();
  const at::Tensor train_diff = data.diff.index_select(0, train), train_user = data.user.index_select(0, train);
  const at::Tensor valid_diff = data.diff.index_select(0, valid), valid_user = data.user.index_select(0, valid);
  auto margins = [&p](const at::Tensor& diff, const at::Tensor& user) {
    const at::Tensor weights = p.w + p.embed.index_select(0, user).matmul(p.mix.t());
    return (weights * diff).sum(1);
  };

  TrainLoop loop;
  loop.n_items = train.size(0);
  loop.items_per_step = o.batch;
  loop.loss = [&](const at::Tensor& items) {
    at::Tensor user = train_user.index_select(0, items);
    if (o.generic_share > 0) {
      const at::Tensor to_generic = at::rand({items.size(0)}, gen) < o.generic_share;
      user = at::where(to_generic, at::full_like(user, n_users), user);
    }
    return prm_loss(p, train_diff.index_select(0, items), user);
  };
  if (valid.numel() > 0)
    loop.valid = [&] {
      const at::Tensor m = margins(valid_diff, valid_user);
      return std::make_pair(bt_nll(m), bt_accuracy(m));
    };
  report.epochs = run_training({p.w, p.mix, p.embed}, {}, o, loop, gen, "fit prm");
  for (auto* t : {&p.w, &p.mix, &p.embed}) *t = t->detach();
  at::NoGradGuard no_grad;
  report.train_accuracy = bt_accuracy(margins(train_diff, train_user));
  const at::Tensor m = margins(valid_diff, valid_user);
  report.valid_accuracy = bt_accuracy(m);
  report.valid_loss = bt_nll(m);
  report.seconds = seconds_since(t0);
  return {
      scoring::make_prm_reward(std::move(p), {.adapt_steps = o.adapt_steps, .adapt_l2 = o.adapt_l2, .adapt_lr = o.lr}),
      report};
}

}  // namespace detail

}  // namespace palign::training
