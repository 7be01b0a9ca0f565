// Reward-head training throughput (pairs/s) on features of the default model's width (2 x 256), for every head of
// training/reward_heads.h and the one-size-fits-all linear Bradley–Terry fit, the baseline of the ratio column.
// First checks that each head learns the planted preferences (held-out agreement above chance; 48 users of 4 kinds,
// 64 pairs each, in 512 dimensions, is a hard problem: the planted weights themselves are printed for reference).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "bench_util.h"
#include "palign/base/rng.h"
#include "palign/runtime/platform.h"
#include "palign/training/linear_bt.h"
#include "palign/training/reward_heads.h"

using namespace palign;
using namespace palign::training;
using palign::bench_util::Clock;
using palign::bench_util::seconds_since;

namespace {


// Users of 4 kinds, each with a planted weight vector over D features; labels from the Bradley–Terry model.
struct Planted {
  PreferencePairs train, test;
  int64_t n_users = 0;
  double oracle_agreement = 0;  // of the planted weights themselves on the held-out pairs
};

Planted make_data(int64_t n_users, int64_t pairs_per_user, int64_t dim, uint64_t seed) {
  at::manual_seed(static_cast<int64_t>(seed));
  const at::Tensor kinds = at::randn({4, dim}) * (3.0 / std::sqrt(static_cast<double>(dim)));
  Planted p;
  p.n_users = n_users;
  auto draw = [&](int64_t per_user, PreferencePairs& out) {
    std::vector<at::Tensor> c, r;
    for (int64_t u = 0; u < n_users; ++u) {
      const at::Tensor w = kinds[u % 4];
      const at::Tensor a = at::randn({per_user, dim}), b = at::randn({per_user, dim});
      const at::Tensor a_wins = at::rand({per_user}).lt(at::sigmoid(at::mv(a - b, w))).unsqueeze(1);
      c.push_back(at::where(a_wins, a, b));
      r.push_back(at::where(a_wins, b, a));
      for (int64_t i = 0; i < per_user; ++i) out.user.push_back(u);
    }
    out.chosen = at::cat(c);
    out.rejected = at::cat(r);
  };
  draw(pairs_per_user, p.train);
  draw(16, p.test);
  int64_t agree = 0;
  for (size_t i = 0; i < p.test.user.size(); ++i)
    agree += at::dot(p.test.chosen[static_cast<int64_t>(i)] - p.test.rejected[static_cast<int64_t>(i)],
                     kinds[p.test.user[i] % 4])
                 .item<float>() > 0;
  p.oracle_agreement = static_cast<double>(agree) / static_cast<double>(p.test.user.size());
  return p;
}

double agreement(const scoring::PersonalizedReward& head, const PreferencePairs& test) {
  int64_t agree = 0;
  for (int64_t u = 0, i = 0; i < static_cast<int64_t>(test.user.size()); ++u) {
    const at::Tensor state = head.user_state(u);
    int64_t j = i;
    while (j < static_cast<int64_t>(test.user.size()) && test.user[j] == u) ++j;
    const at::Tensor m =
        head.score(test.chosen.slice(0, i, j), state) - head.score(test.rejected.slice(0, i, j), state);
    agree += m.gt(0).sum().item<int64_t>();
    i = j;
  }
  return static_cast<double>(agree) / static_cast<double>(test.user.size());
}

}  // namespace

int main() {
  std::printf("palign reward bench: libtorch %s, %d torch threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              runtime::blas_description().c_str());
  const int64_t dim = 512;
  const Planted data = make_data(/*n_users=*/48, /*pairs_per_user=*/64, dim, /*seed=*/1);
  const auto n_pairs = static_cast<double>(data.train.user.size());

  // Baseline: the one-size-fits-all linear BT fit (Newton, L2 picked on held-out pairs).
  std::vector<std::vector<float>> chosen, rejected;
  for (int64_t i = 0; i < data.train.chosen.size(0); ++i) {
    const at::Tensor c = data.train.chosen[i].contiguous(), r = data.train.rejected[i].contiguous();
    chosen.emplace_back(c.data_ptr<float>(), c.data_ptr<float>() + dim);
    rejected.emplace_back(r.data_ptr<float>(), r.data_ptr<float>() + dim);
  }
  (void)fit_linear_bt(chosen, rejected);  // warm-up
  double bt_seconds = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    (void)fit_linear_bt(chosen, rejected);
    bt_seconds = std::min(bt_seconds, seconds_since(t0));
  }
  const double bt_rate = n_pairs / bt_seconds;

  std::printf("| head | held-out agreement | epochs | pairs/s (epochs x pairs / s) | fit s | ratio to bt fit time |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::printf("| bt (linear, Newton) | — | — | %.0f | %.2f | 1.0x |\n", bt_rate, bt_seconds);
  bool ok = true;
  for (const char* method : {"prm", "pal", "vpl", "linear"}) {
    RewardFitOptions o;
    o.seed = 3;
    o.max_epochs = 2;
    (void)fit_personalized_reward(method, data.train, data.n_users, o);  // warm-up
    o.max_epochs = 300;
    double best = 1e30, acc = 0;
    int64_t epochs = 0;
    for (int rep = 0; rep < 2; ++rep) {
      const auto t0 = Clock::now();
      const FittedReward fitted = fit_personalized_reward(method, data.train, data.n_users, o);
      const double s = seconds_since(t0);
      if (s < best) best = s, epochs = fitted.report.epochs;
      acc = agreement(*fitted.head, data.test);
    }
    ok &= acc > 0.55;
    std::printf("| %s | %.3f | %ld | %.0f | %.2f | %.2fx |\n", method, acc, static_cast<long>(epochs),
                static_cast<double>(std::max<int64_t>(1, epochs)) * n_pairs * 0.8 / best, best, best / bt_seconds);
  }
  std::printf(
      "check: every head agrees with the planted users on > 55%% of held-out pairs (the planted weights "
      "themselves: %.3f): %s\n",
      data.oracle_agreement, ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
