// "maxmin": MaxMin-RLHF's mixture of preference groups (Chakraborty et al. 2024), over fixed features: K Bradley–Terry
// reward heads w_k, each seen user assigned to one group (the fit's hard EM). A user's state is a one-hot [K]: a seen
// user's group, a new user's the group under whose head their pairs are most likely. The generic user (no pairs) has
// the all-zero state and the egalitarian reward min_k w_k·x, the worst-off group's, which MaxMin aligns one policy
// to: best-of-N by it picks the candidate that maximises the minimum over groups.
#include <ATen/ATen.h>

#include "personalized_internal.h"

namespace palign::scoring {

namespace {

class MaxminReward final : public PersonalizedReward {
 public:
  explicit MaxminReward(MaxminParams p) : PersonalizedReward(p.heads.size(1), p.assignment.size(0)), p_(std::move(p)) {}

  std::string method() const override { return "maxmin"; }

  at::Tensor user_state(int64_t user) const override {
    detail::check_user(user, n_users(), "scoring.maxmin.user_state");
    return one_hot(p_.assignment[user].item<int64_t>());
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = detail::prepare_new_user(chosen, rejected, dim(), "scoring.maxmin.new_user_state");
    if (c.size(0) == 0) return at::zeros({groups()});
    // log-likelihood of the pairs under each head: Σ_i log σ(w_k · (c_i − r_i)).
    const at::Tensor loglik = at::log_sigmoid((c - r).to(at::kDouble).matmul(p_.heads.to(at::kDouble).t())).sum(0);
    return one_hot(loglik.argmax().item<int64_t>());
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = detail::prepare_features(x, dim(), state, groups(), "scoring.maxmin.score");
    const at::Tensor per_group = f.matmul(p_.heads.t());  // [N, K]
    const at::Tensor s = state.to(at::kFloat);
    if (s.abs().sum().item<float>() == 0) return std::get<0>(per_group.min(1));  // egalitarian
    return per_group.matmul(s);
  }

  void save(const std::filesystem::path& dir) const override {
    detail::write_reward_head(dir, method(), dim(), n_users(), {{"groups", groups()}},
                              {{"heads", p_.heads}, {"assignment", p_.assignment.to(at::kFloat)}});
  }

 private:
  int64_t groups() const { return p_.heads.size(0); }
  at::Tensor one_hot(int64_t k) const {
    at::Tensor s = at::zeros({groups()});
    s[k] = 1.0f;
    return s;
  }
  MaxminParams p_;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_maxmin_reward(MaxminParams params) {
  PALIGN_ASSERT(params.heads.dim() == 2 && params.heads.size(0) >= 1 && params.assignment.dim() == 1,
                "maxmin parameters of inconsistent shapes");
  params.heads = params.heads.detach().to(at::kFloat).contiguous();
  params.assignment = params.assignment.to(at::kLong).contiguous();
  const int64_t k = params.heads.size(0);
  PALIGN_CHECK(params.assignment.numel() == 0 ||
                   (params.assignment.min().item<int64_t>() >= 0 && params.assignment.max().item<int64_t>() < k),
               ErrorCode::kInvalidArgument, "[scoring.maxmin] a user's group is outside [0, ", k, ")");
  return std::make_unique<MaxminReward>(std::move(params));
}

namespace detail {

std::unique_ptr<PersonalizedReward> load_maxmin(const nlohmann::json& meta, const runtime::SafetensorsFile& file,
                                                const std::filesystem::path& path) {
  const auto dim = json_field<int64_t>(meta, "dim", path), n_users = json_field<int64_t>(meta, "n_users", path);
  const auto groups = json_field<int64_t>(meta, "groups", path);
  PALIGN_CHECK(dim > 0 && n_users >= 0 && groups >= 1, ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ",
               path.string(), " has invalid dimensions");
  const at::Tensor assignment = load_tensor(file, "assignment", {n_users});
  PALIGN_CHECK(at::equal(assignment, assignment.round()) &&
                   (n_users == 0 || (assignment.min().item<float>() >= 0 && assignment.max().item<float>() < groups)),
               ErrorCode::kInvalidArgument, "[scoring.reward_head.load] ", path.string(),
               " assigns a user to a group outside [0, ", groups, ")");
  return make_maxmin_reward({.heads = load_tensor(file, "heads", {groups, dim}), .assignment = assignment});
}

}  // namespace detail

}  // namespace palign::scoring
