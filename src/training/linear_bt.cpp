// Linear Bradley–Terry reward by Newton's method (see linear_bt.h).
#include "palign/training/linear_bt.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "palign/base/error.h"
#include "palign/base/rng.h"

namespace palign::training {

namespace {

at::Tensor to_tensor(const std::vector<std::vector<float>>& rows, int64_t dim) {
  at::Tensor t = at::empty({static_cast<int64_t>(rows.size()), dim}, at::kDouble);
  auto acc = t.accessor<double, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t j = 0; j < dim; ++j) acc[static_cast<int64_t>(i)][j] = rows[i][j];
  return t;
}

// argmin_w Σ softplus(−x_i · w) + l2/2 ‖w‖² for difference rows x [n, d]. Each step solves H δ = g with
// H = Xᵀ S X + l2 I (S = diag p(1 − p)): as a d × d system when n ≥ d, else by Woodbury's identity as an n × n one,
// H⁻¹ g = (g − Xᵀ (l2 S⁻¹ + X Xᵀ)⁻¹ X g) / l2. The d × d Hessian is formed in float32 (the gradient stays float64,
// so the optimum is the same; only the steps are approximate). Starts from start (e.g. the fit at a stronger L2)
// when given; stops when the Newton decrement gᵀδ is negligible.
at::Tensor newton(const at::Tensor& x, double l2, int steps, const at::Tensor& start = {}) {
  const int64_t n = x.size(0), dim = x.size(1);
  at::Tensor w = start.defined() ? start.clone() : at::zeros({dim}, at::kDouble);
  const bool dual = n < dim;
  const at::Tensor gram = dual ? x.matmul(x.t()) : at::Tensor();
  const at::Tensor xf = dual ? at::Tensor() : x.to(at::kFloat);
  const at::Tensor eye = dual ? at::Tensor() : at::eye(dim, at::kDouble);
  for (int step = 0; step < steps; ++step) {
    const at::Tensor p = at::sigmoid(x.matmul(w));  // P(chosen wins)
    const at::Tensor grad = x.t().matmul(p - 1.0) + l2 * w;
    at::Tensor delta;
    if (dual) {
      const at::Tensor s = (p * (1.0 - p)).clamp_min(1e-12);
      const at::Tensor inner = gram + at::diag(l2 / s);
      delta = (grad - x.t().matmul(at::linalg_solve(inner, x.matmul(grad)))) / l2;
    } else {
      const at::Tensor hess = (xf.t() * (p * (1.0 - p)).to(at::kFloat)).matmul(xf).to(at::kDouble) + l2 * eye;
      delta = at::linalg_solve(hess, grad);
    }
    w = w - delta;
    if (grad.dot(delta).item<double>() < 1e-12 * static_cast<double>(std::max<int64_t>(n, 1))) break;
  }
  return w;
}

double mean_log_likelihood(const at::Tensor& x, const at::Tensor& w) {
  return -at::softplus(-x.matmul(w)).mean().item<double>();
}

}  // namespace

std::string LinearBtOptions::validate() const {
  if (l2_grid.empty()) return "l2_grid must not be empty";
  for (double l2 : l2_grid)
    if (!(l2 > 0.0 && std::isfinite(l2))) return "l2_grid values must be positive";
  if (!(valid_share > 0.0 && valid_share < 1.0)) return "valid_share must be in (0, 1)";
  if (newton_steps < 1) return "newton_steps must be >= 1";
  return "";
}

double LinearBt::score(const std::vector<float>& features) const {
  if (weights.empty()) return 0.0;
  PALIGN_CHECK(features.size() == weights.size(), ErrorCode::kInvalidArgument, "[training.linear_bt] ", features.size(),
               " features for a reward fitted on ", weights.size());
  double r = 0.0;
  for (size_t j = 0; j < weights.size(); ++j) r += weights[j] * (features[j] - mean[j]) / scale[j];
  return r;
}

LinearBt fit_linear_bt(const std::vector<std::vector<float>>& chosen, const std::vector<std::vector<float>>& rejected,
                       const LinearBtOptions& options) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[training.linear_bt] ", problem);
  PALIGN_CHECK(chosen.size() == rejected.size(), ErrorCode::kInvalidArgument, "[training.linear_bt] ", chosen.size(),
               " chosen but ", rejected.size(), " rejected responses");
  LinearBt bt;
  if (chosen.empty()) return bt;
  const auto dim = static_cast<int64_t>(chosen[0].size());
  for (size_t i = 0; i < chosen.size(); ++i)
    PALIGN_CHECK(static_cast<int64_t>(chosen[i].size()) == dim && static_cast<int64_t>(rejected[i].size()) == dim,
                 ErrorCode::kInvalidArgument, "[training.linear_bt] pair ", i, " has features of another size");
  c10::InferenceMode guard;
  const at::Tensor c = to_tensor(chosen, dim), r = to_tensor(rejected, dim);
  const at::Tensor all = at::cat({c, r});
  const at::Tensor mean = all.mean(0);
  const at::Tensor scale = all.std(0, /*unbiased=*/false).clamp_min(1e-6);
  const at::Tensor x = (c - r) / scale;

  bt.l2 = options.l2_grid[0];
  const auto n = x.size(0);
  const auto n_valid = static_cast<int64_t>(std::floor(static_cast<double>(n) * options.valid_share));
  PALIGN_CHECK(options.groups.empty() || static_cast<int64_t>(options.groups.size()) == n, ErrorCode::kInvalidArgument,
               "[training.linear_bt] ", options.groups.size(), " groups for ", n, " pairs; give one per pair or none");
  if (options.l2_grid.size() > 1 && n_valid >= 1 && n - n_valid >= 1) {
    Rng rng(derive_seed(options.seed, "linear_bt.valid"));
    std::vector<int64_t> valid_idx, train_idx;
    if (options.groups.empty()) {
      std::vector<int64_t> order(n);
      for (int64_t i = 0; i < n; ++i) order[i] = i;
      for (int64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.uniform_int(static_cast<uint64_t>(i))]);
      valid_idx.assign(order.begin(), order.begin() + n_valid);
      train_idx.assign(order.begin() + n_valid, order.end());
    } else {
      // Whole groups, in a seeded order, until the held-out share is reached.
      std::vector<int64_t> ids = options.groups;
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      for (auto i = static_cast<int64_t>(ids.size()); i > 1; --i)
        std::swap(ids[i - 1], ids[rng.uniform_int(static_cast<uint64_t>(i))]);
      std::set<int64_t> held;
      int64_t n_held = 0;
      for (size_t i = 0; i < ids.size() && n_held < n_valid; ++i) {
        held.insert(ids[i]);
        n_held += std::count(options.groups.begin(), options.groups.end(), ids[i]);
      }
      for (int64_t i = 0; i < n; ++i) (held.count(options.groups[i]) ? valid_idx : train_idx).push_back(i);
    }
    if (!train_idx.empty() && !valid_idx.empty()) {
      const at::Tensor valid = x.index_select(0, at::tensor(valid_idx, at::kLong));
      const at::Tensor train = x.index_select(0, at::tensor(train_idx, at::kLong));
      double best = -std::numeric_limits<double>::infinity();
      // From the strongest L2 down, each fit started from the one before (the same optima in fewer steps).
      std::vector<double> grid = options.l2_grid;
      std::sort(grid.rbegin(), grid.rend());
      at::Tensor w;
      for (double l2 : grid) {
        w = newton(train, l2, options.newton_steps, w);
        const double ll = mean_log_likelihood(valid, w);
        if (ll > best) best = ll, bt.l2 = l2;
      }
    }
  }
  const at::Tensor w = newton(x, bt.l2, options.newton_steps);
  bt.mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + dim);
  bt.scale.assign(scale.data_ptr<double>(), scale.data_ptr<double>() + dim);
  bt.weights.assign(w.data_ptr<double>(), w.data_ptr<double>() + dim);
  return bt;
}

}  // namespace palign::training
