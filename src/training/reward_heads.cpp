// The shared part of the personalized reward heads' fits (see reward_heads.h): options, input validation, the
// held-out split, the AdamW loop with early stopping and the method table. The fits themselves are in fit_prm.cpp,
// fit_pal.cpp, fit_vpl.cpp, fit_linear.cpp and fit_maxmin.cpp; the fitted heads in scoring.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "reward_heads_internal.h"

namespace palign::training {

namespace {
constexpr const char* kKnownMethods = "prm, pal, vpl, linear, maxmin";
}  // namespace

std::string RewardFitOptions::validate() const {
  if (max_epochs < 1) return "max_epochs must be >= 1";
  if (!(lr > 0 && std::isfinite(lr))) return "lr must be > 0";
  if (!(weight_decay >= 0 && std::isfinite(weight_decay))) return "weight_decay must be >= 0";
  if (!(valid_share >= 0 && valid_share < 1)) return "valid_share must be in [0, 1)";
  if (patience < 1) return "patience must be >= 1";
  if (batch < 1) return "batch must be >= 1";
  if (n_prototypes < 1) return "n_prototypes must be >= 1";
  if (latent_dim < 1 || hidden < 1 || embed_dim < 1) return "latent_dim, hidden and embed_dim must be >= 1";
  if (!(kl_weight >= 0 && std::isfinite(kl_weight))) return "kl_weight must be >= 0";
  if (context_pairs < 1) return "context_pairs must be >= 1";
  if (!(generic_share >= 0 && generic_share < 1)) return "generic_share must be in [0, 1)";
  if (!(prior_weight > 0 && std::isfinite(prior_weight))) return "prior_weight must be > 0";
  if (adapt_steps < 0) return "adapt_steps must be >= 0";
  if (!(adapt_l2 >= 0 && std::isfinite(adapt_l2))) return "adapt_l2 must be >= 0";
  if (groups < 0) return "groups must be >= 0 (0: chosen on the held-out pairs)";
  if (max_groups < 1) return "max_groups must be >= 1";
  if (em_restarts < 1 || em_iterations < 1) return "em_restarts and em_iterations must be >= 1";
  return {};
}

namespace detail {

PairData prepare_fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& options, const char* fn) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[", fn, "] ", problem);
  return prepare_pairs(pairs, n_users, fn);
}

PairData prepare_pairs(const PreferencePairs& pairs, int64_t n_users, const char* fn) {
  at::Tensor c = scoring::check_feature_matrix(pairs.chosen, "chosen", -1, fn);
  at::Tensor r = scoring::check_feature_matrix(pairs.rejected, "rejected", -1, fn);
  PALIGN_CHECK(c.sizes() == r.sizes(), ErrorCode::kInvalidArgument, "[", fn, "] chosen features are ", c.sizes(),
               " but rejected are ", r.sizes());
  const int64_t n = c.size(0);
  PALIGN_CHECK(n > 0, ErrorCode::kInvalidArgument, "[", fn, "] no pairs to fit on");
  PALIGN_CHECK(c.size(1) > 0, ErrorCode::kInvalidArgument, "[", fn, "] features have no columns");
  PairData d;
  if (pairs.user.empty()) {
    PALIGN_CHECK(n_users == 0 || n_users == 1, ErrorCode::kInvalidArgument, "[", fn, "] n_users is ", n_users,
                 " but the pairs carry no user indices; give one per pair or pass n_users = 1");
    d.n_users = 1;
    d.user = at::zeros({n}, at::kLong);
  } else {
    PALIGN_CHECK(static_cast<int64_t>(pairs.user.size()) == n, ErrorCode::kInvalidArgument, "[", fn, "] ",
                 pairs.user.size(), " user indices for ", n, " pairs");
    PALIGN_CHECK(n_users >= 1, ErrorCode::kInvalidArgument, "[", fn, "] n_users must be >= 1; got ", n_users);
    for (size_t i = 0; i < pairs.user.size(); ++i)
      PALIGN_CHECK(pairs.user[i] >= 0 && pairs.user[i] < n_users, ErrorCode::kInvalidArgument, "[", fn, "] pair ", i,
                   " has user ", pairs.user[i], ", outside [0, ", n_users, ")");
    d.n_users = n_users;
    d.user = at::tensor(pairs.user, at::kLong);
  }
  PALIGN_CHECK(pairs.group.empty() || static_cast<int64_t>(pairs.group.size()) == n, ErrorCode::kInvalidArgument, "[",
               fn, "] ", pairs.group.size(), " groups for ", n, " pairs; give one per pair or none");
  d.group = pairs.group;
  const at::Tensor keep = (c != r).any(1);
  const int64_t kept = keep.sum().item<int64_t>();
  PALIGN_CHECK(kept > 0, ErrorCode::kInvalidArgument, "[", fn, "] all ", n,
               " pairs have identical chosen and rejected features; nothing can be learned from them");
  d.skipped = n - kept;
  if (d.skipped > 0) {
    const at::Tensor idx = keep.nonzero().squeeze(1);
    c = c.index_select(0, idx);
    r = r.index_select(0, idx);
    d.user = d.user.index_select(0, idx);
    if (!d.group.empty()) {
      std::vector<int64_t> kept_group;
      for (int64_t i = 0; i < idx.size(0); ++i)
        kept_group.push_back(d.group[static_cast<size_t>(idx[i].item<int64_t>())]);
      d.group = std::move(kept_group);
    }
  }
  d.chosen = c;
  d.rejected = r;
  d.diff = c - r;
  return d;
}

std::pair<at::Tensor, at::Tensor> split_pairs(int64_t n, double valid_share, at::Generator& gen,
                                              const std::vector<int64_t>& group) {
  const auto n_valid = static_cast<int64_t>(std::floor(static_cast<double>(n) * valid_share));
  if (group.empty()) {
    const at::Tensor perm = at::randperm(n, gen, at::kLong);
    if (n_valid < 1 || n - n_valid < 2) return {perm, at::empty({0}, at::kLong)};
    return {std::get<0>(perm.slice(0, n_valid).sort()), std::get<0>(perm.slice(0, 0, n_valid).sort())};
  }
  PALIGN_CHECK(static_cast<int64_t>(group.size()) == n, ErrorCode::kInvalidArgument, "[training.reward_heads] ",
               group.size(), " groups for ", n, " pairs");
  std::vector<int64_t> ids = group;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const at::Tensor order = at::randperm(static_cast<int64_t>(ids.size()), gen, at::kLong);
  std::set<int64_t> held;
  int64_t n_held = 0;
  for (int64_t i = 0; i < order.size(0) && n_held < n_valid; ++i) {
    const int64_t g = ids[static_cast<size_t>(order[i].item<int64_t>())];
    held.insert(g);
    n_held += std::count(group.begin(), group.end(), g);
  }
  std::vector<int64_t> train, valid;
  for (int64_t i = 0; i < n; ++i) (held.count(group[static_cast<size_t>(i)]) ? valid : train).push_back(i);
  if (n_valid < 1 || train.size() < 2) return {at::arange(n, at::kLong), at::empty({0}, at::kLong)};
  return {at::tensor(train, at::kLong), at::tensor(valid, at::kLong)};
}

double bt_accuracy(const at::Tensor& margin) {
  if (margin.numel() == 0) return std::nan("");
  const at::Tensor m = margin.detach().to(at::kDouble);
  return ((m > 0).to(at::kDouble).sum() + 0.5 * (m == 0).to(at::kDouble).sum()).item<double>() /
         static_cast<double>(m.numel());
}

double bt_nll(const at::Tensor& margin) {
  if (margin.numel() == 0) return std::nan("");
  return at::softplus(-margin.detach().to(at::kDouble)).mean().item<double>();
}

int64_t run_training(const std::vector<at::Tensor>& decay, const std::vector<at::Tensor>& no_decay,
                     const RewardFitOptions& o, const TrainLoop& loop, at::Generator& gen, const std::string& label) {
  PALIGN_ASSERT(loop.n_items > 0 && loop.items_per_step > 0, "empty training set");
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty())
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay)));
  if (!no_decay.empty())
    groups.emplace_back(no_decay,
                        std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.lr).weight_decay(0)));
  torch::optim::AdamW opt(std::move(groups));
  std::vector<at::Tensor> params = decay;
  params.insert(params.end(), no_decay.begin(), no_decay.end());
  std::vector<at::Tensor> best;
  double best_loss = std::numeric_limits<double>::infinity();
  int64_t since_best = 0, epoch = 0;
  ProgressBar bar(label, o.max_epochs, o.progress);
  while (epoch < o.max_epochs) {
    const at::Tensor perm = at::randperm(loop.n_items, gen, at::kLong);
    double total = 0;
    int64_t steps = 0;
    for (int64_t start = 0; start < loop.n_items; start += loop.items_per_step, ++steps) {
      opt.zero_grad();
      at::Tensor loss = loop.loss(perm.slice(0, start, std::min(loop.n_items, start + loop.items_per_step)));
      loss.backward();
      opt.step();
      total += loss.item<double>();
    }
    ++epoch;
    char status[96];
    if (loop.valid) {
      at::NoGradGuard no_grad;
      const auto [valid_loss, valid_acc] = loop.valid();
      if (valid_loss < best_loss - 1e-9) {
        best_loss = valid_loss;
        best.clear();
        for (const auto& p : params) best.push_back(p.detach().clone());
        since_best = 0;
      } else {
        ++since_best;
      }
      std::snprintf(status, sizeof status, "loss %.4f val %.4f acc %.3f", total / steps, valid_loss, valid_acc);
      bar.update(epoch, status);
      if (since_best >= o.patience) break;
    } else {
      std::snprintf(status, sizeof status, "loss %.4f", total / steps);
      bar.update(epoch, status);
    }
  }
  if (!best.empty()) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best[i]);
  }
  bar.finish(since_best >= o.patience ? "stopped early" : "done");
  return epoch;
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace detail

FittedReward fit_personalized_reward(const std::string& method, const PreferencePairs& pairs, int64_t n_users,
                                     const RewardFitOptions& options) {
  using Fit = FittedReward (*)(const detail::PairData&, const RewardFitOptions&);
  static constexpr std::pair<std::string_view, Fit> kFits[] = {
      {"prm", detail::fit_prm},       {"pal", detail::fit_pal},       {"vpl", detail::fit_vpl},
      {"linear", detail::fit_linear}, {"maxmin", detail::fit_maxmin},
  };
  for (const auto& [name, fit] : kFits)
    if (name == method) {
      const std::string where = "training." + method + ".fit";
      return fit(detail::prepare_fit(pairs, n_users, options, where.c_str()), options);
    }
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward_head] unknown method '", method,
               "'; known: ", kKnownMethods);
}

}  // namespace palign::training
