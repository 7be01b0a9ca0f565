// The shared part of the personalized reward heads (see reward_heads.h): options, input validation, the held-out
// split, the AdamW loop with early stopping, save/load plumbing and the method table. The methods themselves are in
// reward_prm.cpp, reward_pal.cpp, reward_vpl.cpp and reward_linear.cpp.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "palign/base/error.h"
#include "palign/base/progress.h"
#include "reward_heads_internal.h"

namespace palign::training {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kFormat = "palign.reward_head";
constexpr int kVersion = 1;
constexpr const char* kKnownMethods = "prm, pal, vpl, linear";
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
  return {};
}

namespace detail {

namespace {

// Checks one [K, D] feature matrix; returns it as contiguous float32.
at::Tensor check_matrix(const at::Tensor& t, const char* what, int64_t dim, const char* fn) {
  PALIGN_CHECK(t.defined(), ErrorCode::kInvalidArgument, "[", fn, "] ", what, " features are missing");
  PALIGN_CHECK(t.dim() == 2, ErrorCode::kInvalidArgument, "[", fn, "] ", what, " features must be [N, D]; got ",
               t.dim(), " dimensions");
  PALIGN_CHECK(at::isFloatingType(t.scalar_type()), ErrorCode::kInvalidArgument, "[", fn, "] ", what,
               " features must be floating point; got ", t.scalar_type());
  PALIGN_CHECK(dim < 0 || t.size(1) == dim, ErrorCode::kInvalidArgument, "[", fn, "] ", what, " features have ",
               t.size(1), " columns; the head was fitted on D = ", dim);
  at::Tensor out = t.to(at::kFloat).contiguous();
  PALIGN_CHECK(out.numel() == 0 || at::isfinite(out).all().item<bool>(), ErrorCode::kInvalidArgument, "[", fn, "] ",
               what, " features contain NaN or infinite values");
  return out;
}

}  // namespace

PairData prepare_fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& options, const char* fn) {
  const std::string problem = options.validate();
  PALIGN_CHECK(problem.empty(), ErrorCode::kInvalidArgument, "[", fn, "] ", problem);
  return prepare_pairs(pairs, n_users, fn);
}

PairData prepare_pairs(const PreferencePairs& pairs, int64_t n_users, const char* fn) {
  at::Tensor c = check_matrix(pairs.chosen, "chosen", -1, fn);
  at::Tensor r = check_matrix(pairs.rejected, "rejected", -1, fn);
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
  }
  d.chosen = c;
  d.rejected = r;
  d.diff = c - r;
  return d;
}

std::pair<at::Tensor, at::Tensor> prepare_new_user(const at::Tensor& chosen, const at::Tensor& rejected, int64_t dim,
                                                   const char* fn) {
  PALIGN_CHECK(dim > 0, ErrorCode::kInvalidArgument, "[", fn, "] the head is not fitted; call fit() or load it first");
  if (!chosen.defined() && !rejected.defined()) return {at::zeros({0, dim}), at::zeros({0, dim})};
  at::Tensor c = check_matrix(chosen, "chosen", dim, fn);
  at::Tensor r = check_matrix(rejected, "rejected", dim, fn);
  PALIGN_CHECK(c.sizes() == r.sizes(), ErrorCode::kInvalidArgument, "[", fn, "] chosen features are ", c.sizes(),
               " but rejected are ", r.sizes());
  if (c.size(0) == 0) return {c, r};
  const at::Tensor keep = (c != r).any(1);
  PALIGN_CHECK(keep.any().item<bool>(), ErrorCode::kInvalidArgument, "[", fn, "] all ", c.size(0),
               " pairs have identical chosen and rejected features; pass no pairs for the generic state");
  const at::Tensor idx = keep.nonzero().squeeze(1);
  return {c.index_select(0, idx), r.index_select(0, idx)};
}

at::Tensor prepare_features(const at::Tensor& x, int64_t dim, const at::Tensor& state, int64_t state_size,
                            const char* fn) {
  PALIGN_CHECK(dim > 0, ErrorCode::kInvalidArgument, "[", fn, "] the head is not fitted; call fit() or load it first");
  PALIGN_CHECK(state.defined() && state.dim() == 1 && state.size(0) == state_size, ErrorCode::kInvalidArgument, "[", fn,
               "] the user state must be a vector of ", state_size, " values; got ",
               state.defined() ? state.sizes() : at::IntArrayRef{});
  return check_matrix(x, "scored", dim, fn);
}

std::pair<at::Tensor, at::Tensor> split_pairs(int64_t n, double valid_share, at::Generator& gen) {
  const at::Tensor perm = at::randperm(n, gen, at::kLong);
  const auto n_valid = static_cast<int64_t>(std::floor(static_cast<double>(n) * valid_share));
  if (n_valid < 1 || n - n_valid < 2) return {perm, at::empty({0}, at::kLong)};
  return {std::get<0>(perm.slice(0, n_valid).sort()), std::get<0>(perm.slice(0, 0, n_valid).sort())};
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

void adapt(const std::vector<at::Tensor>& params, const std::function<at::Tensor()>& loss, int64_t steps, double lr) {
  if (steps <= 0) return;
  torch::optim::Adam opt(params, torch::optim::AdamOptions(lr));
  for (int64_t step = 0; step < steps; ++step) {
    opt.zero_grad();
    loss().backward();
    opt.step();
  }
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void write_reward_head(const fs::path& dir, const std::string& method, int64_t dim, int64_t n_users, json hyper,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  PALIGN_CHECK(dim > 0, ErrorCode::kInvalidArgument, "[training.reward_head.save] the ", method,
               " head is not fitted; call fit() first");
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(dir), ErrorCode::kIo, "[training.reward_head.save] cannot create ", dir.string(),
               ": ", ec.message());
  std::vector<std::pair<std::string, at::Tensor>> stored;
  for (const auto& [name, t] : tensors) stored.emplace_back(name, t.detach().to(at::kFloat).contiguous());
  runtime::save_safetensors(dir / "reward_head.safetensors", stored, {{"format", kFormat}});
  json meta{{"format", kFormat}, {"version", kVersion}, {"method", method}, {"dim", dim}, {"n_users", n_users}};
  meta.update(hyper);
  const fs::path path = dir / "reward_head.json";
  std::ofstream out(path, std::ios::trunc);
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.reward_head.save] cannot write ", path.string());
  out << meta.dump(2) << "\n";
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[training.reward_head.save] writing ", path.string(), " failed");
}

at::Tensor load_tensor(const runtime::SafetensorsFile& file, const std::string& name,
                       const std::vector<int64_t>& shape) {
  PALIGN_CHECK(file.contains(name), ErrorCode::kInvalidArgument, "[training.reward_head.load] ", file.path().string(),
               " lacks the tensor ", name);
  at::Tensor t = file.get_f32(name);
  PALIGN_CHECK(t.sizes() == at::IntArrayRef(shape), ErrorCode::kInvalidArgument, "[training.reward_head.load] ",
               file.path().string(), ": ", name, " is ", t.sizes(), ", expected ", at::IntArrayRef(shape));
  return t.clone();
}

}  // namespace detail

std::unique_ptr<PersonalizedReward> make_personalized_reward(const std::string& method) {
  if (method == "prm") return detail::make_prm();
  if (method == "pal") return detail::make_pal();
  if (method == "vpl") return detail::make_vpl();
  if (method == "linear") return detail::make_linear();
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward_head] unknown method '", method,
               "'; known: ", kKnownMethods);
}

std::unique_ptr<PersonalizedReward> load_personalized_reward(const fs::path& dir) {
  const fs::path meta_path = dir / "reward_head.json";
  PALIGN_CHECK(fs::exists(meta_path), ErrorCode::kNotFound, "[training.reward_head.load] ", meta_path.string(),
               " does not exist; save a head there with PersonalizedReward::save");
  json meta;
  try {
    std::ifstream in(meta_path);
    meta = json::parse(in);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward_head.load] ", meta_path.string(),
                 " is not valid JSON: ", e.what());
  }
  PALIGN_CHECK(meta.is_object() && meta.value("format", "") == kFormat, ErrorCode::kInvalidArgument,
               "[training.reward_head.load] ", meta_path.string(), " is not a palign reward head (\"format\" is not \"",
               kFormat, "\")");
  PALIGN_CHECK(meta.value("version", 0) == kVersion, ErrorCode::kInvalidArgument, "[training.reward_head.load] ",
               meta_path.string(), " has version ", meta.value("version", 0), "; this palign reads version ", kVersion);
  const auto method = detail::json_field<std::string>(meta, "method", meta_path);
  const fs::path weights = dir / "reward_head.safetensors";
  PALIGN_CHECK(fs::exists(weights), ErrorCode::kNotFound, "[training.reward_head.load] ", weights.string(),
               " does not exist next to ", meta_path.filename().string());
  const auto file = runtime::SafetensorsFile::open(weights);
  if (method == "prm") return detail::load_prm(meta, file, meta_path);
  if (method == "pal") return detail::load_pal(meta, file, meta_path);
  if (method == "vpl") return detail::load_vpl(meta, file, meta_path);
  if (method == "linear") return detail::load_linear(meta, file, meta_path);
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.reward_head.load] ", meta_path.string(), " has method '", method,
               "'; known: ", kKnownMethods);
}

}  // namespace palign::training
