// BiPO steering vectors (see steering_trainer.h).
#include "palign/training/steering_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "palign/base/rng.h"
#include "palign/training/policy_trainer.h"

namespace palign::training {

std::string BipoOptions::validate() const {
  if (layer < 0) return "layer must be >= 0";
  if (!(beta > 0) || !std::isfinite(beta)) return "beta must be a positive finite number";
  if (!(lr > 0) || !std::isfinite(lr)) return "lr must be > 0";
  if (epochs < 1) return "epochs must be >= 1";
  if (batch < 1) return "batch must be >= 1";
  return {};
}

at::Tensor bipo_loss(const runtime::Model& model, const std::vector<ArmPair>& pairs, const at::Tensor& ref_chosen,
                     const at::Tensor& ref_rejected, const at::Tensor& v, int64_t layer, double direction,
                     double beta) {
  std::vector<ArmSequence> rows;
  for (const auto& p : pairs) rows.push_back(p.chosen);
  for (const auto& p : pairs) rows.push_back(p.rejected);
  const auto k = static_cast<int64_t>(pairs.size());
  const at::Tensor lp = response_log_probs(model, rows, nullptr, [&](int64_t l, at::Tensor& x) {
    if (l == layer) x = x + direction * v;
  });
  const at::Tensor d = direction * beta *
                       ((lp.slice(0, 0, k) - ref_chosen) - (lp.slice(0, k, 2 * k) - ref_rejected));
  return (-at::log_sigmoid(d)).mean();
}

at::Tensor train_bipo_vector(const runtime::Model& model, const std::vector<ArmPair>& pairs, const BipoOptions& o,
                             BipoReport* report) {
  const std::string problem = o.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.bipo] ", problem);
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument, "[training.bipo] no preference pairs to train on");
  PALIGN_CHECK(o.layer < model.config().n_layer, ErrorCode::kInvalidArgument, "[training.bipo] layer ", o.layer,
               " is outside the model's ", model.config().n_layer, " layers (0-based)");
  const auto t0 = std::chrono::steady_clock::now();
  const auto [ref_c, ref_r] = reference_log_probs(model, pairs, o.batch);
  at::Tensor v = at::zeros({model.config().hidden_size}, at::kFloat).requires_grad_(true);
  torch::optim::AdamW opt(std::vector<at::Tensor>{v}, torch::optim::AdamWOptions(o.lr).weight_decay(0));
  Rng rng(derive_seed(o.seed, "bipo"));
  std::vector<size_t> order(pairs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const int64_t per_epoch = (static_cast<int64_t>(pairs.size()) + o.batch - 1) / o.batch;
  ProgressBar bar("bipo", o.epochs * per_epoch, o.progress);
  BipoReport rep;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.uniform_int(i)]);
    double sum = 0;
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(o.batch)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(o.batch));
      std::vector<ArmPair> batch;
      std::vector<int64_t> idx;
      for (size_t i = start; i < end; ++i) batch.push_back(pairs[order[i]]), idx.push_back(order[i]);
      const at::Tensor ii = at::tensor(idx, at::kLong);
      const double direction = rng.uniform_int(2) == 0 ? 1.0 : -1.0;
      const at::Tensor loss =
          bipo_loss(model, batch, ref_c.index_select(0, ii), ref_r.index_select(0, ii), v, o.layer, direction, o.beta);
      opt.zero_grad();
      loss.backward();
      opt.step();
      sum += loss.item<double>() * static_cast<double>(end - start);
      ++rep.steps;
      bar.update(rep.steps, "loss " + std::to_string(loss.item<double>()));
    }
    const double mean = sum / static_cast<double>(pairs.size());
    if (epoch == 0) rep.first_loss = mean;
    rep.last_loss = mean;
  }
  bar.finish();
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (report) *report = rep;
  return v.detach().clone();
}

}  // namespace palign::training
