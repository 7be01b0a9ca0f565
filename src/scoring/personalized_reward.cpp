// The shared part of the personalized reward heads (see personalized_reward.h): input checks, the new-user fit,
// save/load plumbing and the method table. The methods are in personalized_{prm,pal,vpl,linear,maxmin}.cpp.
#include <torch/torch.h>

#include <fstream>

#include "palign/base/error.h"
#include "palign/base/json.h"
#include "personalized_internal.h"

namespace palign::scoring {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kFormat = "palign.reward_head";
constexpr int kVersion = 1;
constexpr const char* kKnownMethods = "prm, pal, vpl, linear, maxmin";
}  // namespace

at::Tensor check_feature_matrix(const at::Tensor& t, const char* what, int64_t dim, const char* where) {
  PALIGN_CHECK(t.defined(), ErrorCode::kInvalidArgument, "[", where, "] ", what, " features are missing");
  PALIGN_CHECK(t.dim() == 2, ErrorCode::kInvalidArgument, "[", where, "] ", what, " features must be [N, D]; got ",
               t.dim(), " dimensions");
  PALIGN_CHECK(at::isFloatingType(t.scalar_type()), ErrorCode::kInvalidArgument, "[", where, "] ", what,
               " features must be floating point; got ", t.scalar_type());
  PALIGN_CHECK(dim < 0 || t.size(1) == dim, ErrorCode::kInvalidArgument, "[", where, "] ", what, " features have ",
               t.size(1), " columns; the head was fitted on D = ", dim);
  at::Tensor out = t.to(at::kFloat).contiguous();
  PALIGN_CHECK(out.numel() == 0 || at::isfinite(out).all().item<bool>(), ErrorCode::kInvalidArgument, "[", where, "] ",
               what, " features contain NaN or infinite values");
  return out;
}

namespace detail {

std::pair<at::Tensor, at::Tensor> prepare_new_user(const at::Tensor& chosen, const at::Tensor& rejected, int64_t dim,
                                                   const char* fn) {
  if (!chosen.defined() && !rejected.defined()) return {at::zeros({0, dim}), at::zeros({0, dim})};
  at::Tensor c = check_feature_matrix(chosen, "chosen", dim, fn);
  at::Tensor r = check_feature_matrix(rejected, "rejected", dim, fn);
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
  PALIGN_CHECK(state.defined() && state.dim() == 1 && state.size(0) == state_size, ErrorCode::kInvalidArgument, "[", fn,
               "] the user state must be a vector of ", state_size, " values; got ",
               state.defined() ? state.sizes() : at::IntArrayRef{});
  return check_feature_matrix(x, "scored", dim, fn);
}

void check_user(int64_t user, int64_t n_users, const char* fn) {
  PALIGN_CHECK(user >= 0 && user < n_users, ErrorCode::kInvalidArgument, "[", fn, "] user ", user, " is outside [0, ",
               n_users, ")");
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

void write_reward_head(const fs::path& dir, const std::string& method, int64_t dim, int64_t n_users, json hyper,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(!ec && fs::is_directory(dir), ErrorCode::kIo, "[scoring.reward_head.save] cannot create ", dir.string(),
               ": ", ec.message());
  std::vector<std::pair<std::string, at::Tensor>> stored;
  for (const auto& [name, t] : tensors) stored.emplace_back(name, t.detach().to(at::kFloat).contiguous());
  runtime::save_safetensors(dir / "reward_head.safetensors", stored, {{"format", kFormat}});
  json meta{{"format", kFormat}, {"version", kVersion}, {"method", method}, {"dim", dim}, {"n_users", n_users}};
  meta.update(hyper);
  write_json_file(dir / "reward_head.json", meta, "scoring.reward_head.save");
}

at::Tensor load_tensor(const runtime::SafetensorsFile& file, const std::string& name,
                       const std::vector<int64_t>& shape) {
  PALIGN_CHECK(file.contains(name), ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ", file.path().string(),
               " lacks the tensor ", name);
  at::Tensor t = file.get_f32(name);
  PALIGN_CHECK(t.sizes() == at::IntArrayRef(shape), ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               file.path().string(), ": ", name, " is ", t.sizes(), ", expected ", at::IntArrayRef(shape));
  return t.clone();
}

}  // namespace detail

std::unique_ptr<PersonalizedReward> load_personalized_reward(const fs::path& dir) {
  const fs::path meta_path = dir / "reward_head.json";
  PALIGN_CHECK(fs::exists(meta_path), ErrorCode::kNotFound, "[scoring.reward_head.load] ", meta_path.string(),
               " does not exist; fit a head with `palign train reward` and save it there");
  const json meta = read_json_file(meta_path, "scoring.reward_head.load");
  PALIGN_CHECK(meta.is_object() && meta.value("format", "") == kFormat, ErrorCode::kInvalidArgument,
               "[scoring.reward_head.load] ", meta_path.string(), " is not a palign reward head (\"format\" is not \"",
               kFormat, "\")");
  PALIGN_CHECK(meta.value("version", 0) == kVersion, ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               meta_path.string(), " has version ", meta.value("version", 0), "; this palign reads version ", kVersion);
  const auto method = detail::json_field<std::string>(meta, "method", meta_path);
  const fs::path weights = dir / "reward_head.safetensors";
  PALIGN_CHECK(fs::exists(weights), ErrorCode::kNotFound, "[scoring.reward_head.load] ", weights.string(),
               " does not exist next to ", meta_path.filename().string());
  const auto file = runtime::SafetensorsFile::open(weights);
  if (method == "prm") return detail::load_prm(meta, file, meta_path);
  if (method == "pal") return detail::load_pal(meta, file, meta_path);
  if (method == "vpl") return detail::load_vpl(meta, file, meta_path);
  if (method == "linear") return detail::load_linear(meta, file, meta_path);
  if (method == "maxmin") return detail::load_maxmin(meta, file, meta_path);
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ", meta_path.string(), " has method '", method,
               "'; known: ", kKnownMethods);
}

}  // namespace palign::scoring
