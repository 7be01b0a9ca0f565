// "prm": personalized RLHF reward (Li et al. 2024, "Personalized Language Modeling from Personalized Human Feedback"),
// here over fixed features: r(x, u) = (w + B e_u)·x with a shared weight w [D], a user embedding e_u [E] and a map
// B [D, E]. Row U of the embedding table is the generic user: during training each pair is assigned to it with
// probability generic_share, so it learns the population-average reward and serves users without pairs. A new
// user's embedding is fitted by Adam on their pairs with everything else frozen, from the generic embedding, with
// a small L2 pull toward it.
#include <c10/core/InferenceMode.h>
#include <torch/torch.h>

#include "palign/base/error.h"
#include "reward_heads_internal.h"

namespace palign::training {

using nlohmann::json;

at::Tensor prm_loss(const PrmParams& p, const at::Tensor& diff, const at::Tensor& user) {
  const at::Tensor weights = p.w + p.embed.index_select(0, user).matmul(p.mix.t());  // [N, D]
  return at::softplus(-(weights * diff).sum(1)).mean();
}

namespace detail {

namespace {

constexpr const char* kFn = "training.prm";

class PrmReward final : public PersonalizedReward {
 public:
  std::string method() const override { return "prm"; }

  FitReport fit(const PreferencePairs& pairs, int64_t n_users, const RewardFitOptions& o) override {
    const double t0 = now_seconds();
    const PairData data = prepare_fit(pairs, n_users, o, "training.prm.fit");
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    FitReport report;
    report.skipped_pairs = data.skipped;
    dim_ = data.diff.size(1);
    n_users_ = data.n_users;
    embed_dim_ = o.embed_dim;
    adapt_steps_ = o.adapt_steps;
    adapt_l2_ = o.adapt_l2;
    adapt_lr_ = o.lr;
    at::Generator gen = make_generator(o.seed);
    const auto opts = at::TensorOptions().dtype(at::kFloat);
    p_.w = at::zeros({dim_}, opts).requires_grad_();
    p_.mix = (at::randn({dim_, embed_dim_}, gen, opts) * 0.1).requires_grad_();
    p_.embed = (at::randn({n_users_ + 1, embed_dim_}, gen, opts) * 0.1).requires_grad_();
    const auto [train, valid] = split_pairs(data.diff.size(0), o.valid_share, gen);
    const at::Tensor train_diff = data.diff.index_select(0, train), train_user = data.user.index_select(0, train);
    const at::Tensor valid_diff = data.diff.index_select(0, valid), valid_user = data.user.index_select(0, valid);

    TrainLoop loop;
    loop.n_items = train.size(0);
    loop.items_per_step = o.batch;
    loop.loss = [&](const at::Tensor& items) {
      at::Tensor user = train_user.index_select(0, items);
      if (o.generic_share > 0) {
        const at::Tensor to_generic = at::rand({items.size(0)}, gen) < o.generic_share;
        user = at::where(to_generic, at::full_like(user, n_users_), user);
      }
      return prm_loss(p_, train_diff.index_select(0, items), user);
    };
    if (valid.numel() > 0)
      loop.valid = [&] {
        const at::Tensor m = margins(valid_diff, valid_user);
        return std::make_pair(bt_nll(m), bt_accuracy(m));
      };
    report.epochs = run_training({p_.w, p_.mix, p_.embed}, {}, o, loop, gen, "fit prm");
    for (auto* t : {&p_.w, &p_.mix, &p_.embed}) *t = t->detach();
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
    return p_.embed[user].clone();
  }

  at::Tensor new_user_state(const at::Tensor& chosen, const at::Tensor& rejected) const override {
    const auto [c, r] = prepare_new_user(chosen, rejected, dim_, "training.prm.new_user_state");
    const at::Tensor generic = p_.embed[n_users_];
    if (c.size(0) == 0 || adapt_steps_ == 0) return generic.clone();
    c10::InferenceMode grad_on(false);
    at::AutoGradMode grad(true);
    const at::Tensor diff = (c - r).clone(), w = p_.w.clone(), mix = p_.mix.clone(), anchor = generic.clone();
    at::Tensor e = anchor.clone().requires_grad_();
    adapt(
        {e},
        [&] {
          const at::Tensor margin = diff.matmul(w + mix.matmul(e));
          return at::softplus(-margin).mean() + adapt_l2_ * (e - anchor).pow(2).sum();
        },
        adapt_steps_, adapt_lr_);
    return e.detach();
  }

  at::Tensor score(const at::Tensor& x, const at::Tensor& state) const override {
    const at::Tensor f = prepare_features(x, dim_, state, embed_dim_, "training.prm.score");
    at::NoGradGuard no_grad;
    return f.matmul(p_.w + p_.mix.matmul(state.to(at::kFloat)));
  }

  void save(const std::filesystem::path& dir) const override {
    write_reward_head(
        dir, method(), dim_, n_users_,
        {{"embed_dim", embed_dim_}, {"adapt_steps", adapt_steps_}, {"adapt_l2", adapt_l2_}, {"adapt_lr", adapt_lr_}},
        {{"w", p_.w}, {"mix", p_.mix}, {"embed", p_.embed}});
  }

  void load(const json& meta, const runtime::SafetensorsFile& file, const std::filesystem::path& path) {
    dim_ = json_field<int64_t>(meta, "dim", path);
    n_users_ = json_field<int64_t>(meta, "n_users", path);
    embed_dim_ = json_field<int64_t>(meta, "embed_dim", path);
    adapt_steps_ = json_field<int64_t>(meta, "adapt_steps", path);
    adapt_l2_ = json_field<double>(meta, "adapt_l2", path);
    adapt_lr_ = json_field<double>(meta, "adapt_lr", path);
    PALIGN_CHECK(dim_ > 0 && n_users_ > 0 && embed_dim_ > 0 && adapt_steps_ >= 0, ErrorCode::kInvalidArgument,
                 "[training.reward_head.load] ", path.string(), " has invalid dimensions");
    p_.w = load_tensor(file, "w", {dim_});
    p_.mix = load_tensor(file, "mix", {dim_, embed_dim_});
    p_.embed = load_tensor(file, "embed", {n_users_ + 1, embed_dim_});
  }

 private:
  at::Tensor margins(const at::Tensor& diff, const at::Tensor& user) const {
    const at::Tensor weights = p_.w + p_.embed.index_select(0, user).matmul(p_.mix.t());
    return (weights * diff).sum(1);
  }

  PrmParams p_;
  int64_t embed_dim_ = 0;
  int64_t adapt_steps_ = 0;
  double adapt_l2_ = 0, adapt_lr_ = 0;
};

}  // namespace

std::unique_ptr<PersonalizedReward> make_prm() { return std::make_unique<PrmReward>(); }

std::unique_ptr<PersonalizedReward> load_prm(const json& meta, const runtime::SafetensorsFile& file,
                                             const std::filesystem::path& path) {
  auto head = std::make_unique<PrmReward>();
  head->load(meta, file, path);
  return head;
}

}  // namespace detail

}  // namespace palign::training
