// "pal": PAL-B (Chen et al. 2024, "PAL: Pluralistic Alignment Framework for Learning from Heterogeneous
// Preferences"), here over fixed features and without PAL's shared projection: P prototype rewards r_p(x) = w_p·x,
// and each user mixes them with α_u = softmax(a_u): r_u(x) = Σ_p α_up r_p(x). A new user's logits are fitted by Adam
// on their pairs with the prototypes frozen, from log of the population's mean α, with a small L2 pull toward it.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "palign/base/error.h"
#include "reward_heads_internal.h"

namespace palign::training {

using nlohmann::json;

at::Tensor pal_loss(const PalParams& p, const at::Tensor& diff, const at::Tensor& user) {
  const at::Tensor alpha = at::softmax(p.logits.index_select(0, user), 1);  // [N, P]
  const at::Tensor per_prototype = diff.matmul(p.prototypes.t());           // [N, P]
  return at::softplus(-(alpha * per_prototype).sum(1)).mean();
}

namespace detail {

namespace {

constexpr const char* kFn = "training.pal";

class PalReward final : public PersonalizedReward {
 public:
  std::string method() const override { return "pal"; }

  FitReport fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& o) override {
    const double t0 = now_seconds();
    const PairData data = prepare_fit(pairs, n_users, o, "training.pal.fit");
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    FitReport report;
    report.skipped_pairs = data.skipped;
    dim_ = data.diff.size(1);
    n_users_ = data.n_users;
    n_prototypes_ = o.n_prototypes;
    adapt_steps_ = o.adapt_steps;
    adapt_l2_ = o.adapt_l2;
    adapt_lr_ = o.lr;
    at::Generator gen = make_generator(o.seed);
    const auto opts = at::TensorOptions().dtype(at::kFloat);
    // Distinct random prototypes and mixtures break the symmetry between the prototypes.
    p_.prototypes =
        (at::randn({n_prototypes_, dim_}, gen, opts) / std::sqrt(static_cast<double>(dim_))).requires_grad_();
    p_.logits = at::randn({n_users_, n_prototypes_}, gen, opts).requires_grad_();
    const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen);
    const at::Tensor train_diff = data.diff.index_select(0, train), train_user = data.user.index_select(0, train);
    const at::Tensor valid_diff = data.diff.index_select(0, valid), valid_user = data.user.index_select(0, valid);

    TrainLoop loop;
    loop.n_items = train.size(0);
    loop.items_per_step = o.batch;
    loop.loss = [&](const at::Tensor& items) {
      return pal_loss(p_, train_diff.index_select(0, items), train_user.index_select(0, items));
    };
    if (valid.numel() > 0)
      loop.valid = [&] {
        const at::Tensor m = margins(valid_diff, valid_user);
        return std::make_pair(bt_nll(m), bt_accuracy(m));
      };
    // Only the prototypes are decayed: decaying the logits would pull every α toward uniform, which fits as well
    // with prototypes pushed outside the users' convex hull and so blurs them.
    report.epochs = run_training({p_.prototypes}, {p_.logits}, o, loop, gen, "fit pal");
    p_.prototypes = p_.prototypes.detach();
    p_.logits = p_.logits.detach();
    at::NoGradGuard no_grad;
    report.train_accuracy = bt_accuracy(margins(train_diff, train_user));
    const at::Tensor m = margins(valid_diff, valid_user);
    report.valid_accuracy = bt_accuracy(m);
    report.valid_loss = bt_nll(m);
    report.seconds = now_seconds() - t0;
    return report;
  }

  at::Tensor user_state(int64_t user) const override {
    PALIGN_CHECK(fitted(), ErrorCode::kInvalidArgument, "[", kFn, ".user_state] the head is not fitted");
    PALIGN_CHECK(user >= 0 && user < n_users_, ErrorCode::kInvalidArgument, "[", kFn, ".user_state] user ", user,
                 " is outside [0, ", n_users_, ")");
    return at::softmax(p_.logits[user], 0);
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = prepare_new_user(chosen, rejected, dim_, "training.pal.new_user_state");
    const at::Tensor population = at::softmax(p_.logits, 1).mean(0);  // the population's mean α [P]
    if (c.size(0) == 0 || adapt_steps_ == 0) return population;
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    const at::Tensor per_prototype = (c - r).matmul(p_.prototypes.t()).clone();  // [K, P]
    const at::Tensor anchor = population.clamp_min(1e-6).log().clone();
    at::Tensor a = anchor.clone().requires_grad_();
    adapt(
        {a},
        [&] {
          const at::Tensor margin = per_prototype.matmul(at::softmax(a, 0));
          return at::softplus(-margin).mean() + adapt_l2_ * (a - anchor).pow(2).sum();
        },
        adapt_steps_, adapt_lr_);
    return at::softmax(a.detach(), 0);
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = prepare_features(x, dim_, state, n_prototypes_, "training.pal.score");
    at::NoGradGuard no_grad;
    return f.matmul(p_.prototypes.t()).matmul(state.to(at::kFloat));
  }

  void save(const std::filesystem::path& dir) const override {
    write_reward_head(dir, method(), dim_, n_users_,
                      {{"n_prototypes", n_prototypes_},
                       {"adapt_steps", adapt_steps_},
                       {"adapt_l2", adapt_l2_},
                       {"adapt_lr", adapt_lr_}},
                      {{"prototypes", p_.prototypes}, {"logits", p_.logits}});
  }

  void load(const json& meta, const runtime::SafetensorsFile& file, const std::filesystem::path& path) {
    dim_ = json_field<int64_t>(meta, "dim", path);
    n_users_ = json_field<int64_t>(meta, "n_users", path);
    n_prototypes_ = json_field<int64_t>(meta, "n_prototypes", path);
    adapt_steps_ = json_field<int64_t>(meta, "adapt_steps", path);
    adapt_l2_ = json_field<double>(meta, "adapt_l2", path);
    adapt_lr_ = json_field<double>(meta, "adapt_lr", path);
    PALIGN_CHECK(dim_ > 0 && n_users_ > 0 && n_prototypes_ > 0 && adapt_steps_ >= 0, ErrorCode::kInvalidArgument,
                 "[training.reward_head.load] ", path.string(), " has invalid dimensions");
    p_.prototypes = load_tensor(file, "prototypes", {n_prototypes_, dim_});
    p_.logits = load_tensor(file, "logits", {n_users_, n_prototypes_});
  }

 private:
  at::Tensor margins(const at::Tensor& diff, const at::Tensor& user) const {
    const at::Tensor alpha = at::softmax(p_.logits.index_select(0, user), 1);
    return (alpha * diff.matmul(p_.prototypes.t())).sum(1);
  }

  PalParams p_;
  int64_t n_prototypes_ = 0;
  int64_t adapt_steps_ = 0;
  double adapt_l2_ = 0, adapt_lr_ = 0;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_pal() { return std::make_unique<PalReward>(); }

std::unique_ptr<PersonalizedReward> load_pal(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  auto head = std::make_unique<PalReward>();
  head->load(meta, file, path);
  return head;
}

}  // namespace detail

}  // namespace palign::training
