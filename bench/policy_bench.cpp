// Training-time personalization on the shipped default model: DPO training throughput (tokens/s through forward +
// backward of the LoRA'd policy) against the forward-only reference pass measured in the same run, peak memory, and
// the cost of serving N users' merged adapters (one merged model per user, one after another) against one batched
// pass with each user's soup as that row's adapter; and P-DPO's N users (one adapter, each user's learned tokens before
// the prompt) in one batched pass against one user after another. Checks first that training lowers the loss and that
// both paths of each serving comparison give the same greedy tokens.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/training/policy_trainer.h"

using namespace palign;
using namespace palign::runtime;
using namespace palign::bench_util;
namespace fs = std::filesystem;

namespace {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// Pairs of random token responses to random prompts: 16-token prompts, 24-token responses.
std::vector<training::SequencePair> synthetic_pairs(int64_t n, int64_t vocab) {
  at::manual_seed(7);
  std::vector<training::SequencePair> pairs;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor t = at::randint(2, vocab, {16 + 48}, at::kLong);
    std::vector<int64_t> ids(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    scoring::ResponseSequence c{{ids.begin(), ids.begin() + 40}, 16}, r{{ids.begin(), ids.begin() + 16}, 16};
    r.ids.insert(r.ids.end(), ids.begin() + 40, ids.end());
    pairs.push_back({c, r});
  }
  return pairs;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path model_dir = argc > 1 ? fs::path(argv[1]) : fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
  std::printf("palign policy bench: libtorch %s, %d torch threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              blas_description().c_str());
  const auto model = Model::load(model_dir);
  const ModelConfig& c = model->config();
  const double rss_loaded = peak_rss_mib();

  // Training throughput, DPO with a rank-8 LoRA on q/k/v/o, against the forward-only reference pass.
  const auto pairs = synthetic_pairs(64, c.vocab_size);
  const double tokens = 64.0 * 2 * 40;
  training::PolicyTrainOptions o;
  o.fit.beta = 0.1;
  o.fit.lr = 1e-3;
  o.fit.epochs = 2;
  o.fit.batch = 8;
  o.fit.valid_share = 0;
  auto adapter = LoraAdapter::init(c, o.fit.lora, 0);
  const double before = [&] {
    const auto [rc, rr] = training::reference_log_probs(*model, pairs, 8);
    return (-at::log_sigmoid(at::zeros_like(rc))).mean().item<double>();  // every adapter starts at d = 0
  }();
  double reference_seconds = 0;
  const auto rep = training::fit_policy_adapter(*model, adapter, pairs, o, &reference_seconds);
  const bool learned = rep.train_loss < before;
  std::printf("check: DPO lowers the training loss (%.4f -> %.4f, accuracy %.3f): %s\n", before, rep.train_loss,
              rep.train_accuracy, learned ? "yes" : "NO");
  if (!learned) return 1;
  const double rss_trained = peak_rss_mib();
  const double ref_best = best_seconds(3, [&] { (void)training::reference_log_probs(*model, pairs, 8); });
  const double train_tps = static_cast<double>(rep.trained_pairs) * 2 * 40 / rep.train_seconds;
  const double ref_tps = tokens / ref_best;

  // Serving N users: their soups merged one model at a time vs one batched pass, a soup per row.
  constexpr int kUsers = 8, kExperts = 4, kTokens = 32;
  std::vector<LoraAdapter> experts;
  for (int k = 0; k < kExperts; ++k) experts.push_back(random_expert(c, 100 + k));
  std::vector<const LoraAdapter*> parts;
  for (const auto& e : experts) parts.push_back(&e);
  std::vector<LoraAdapter> soups;
  at::manual_seed(3);
  for (int u = 0; u < kUsers; ++u) {
    const at::Tensor w = at::randn({kExperts}, at::kDouble);
    soups.push_back(lora_soup(parts, std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + kExperts)));
  }
  const std::vector<int64_t> prompt = {0, 112, 430, 57, 1021, 88, 9, 311};
  GenerateOptions g;
  g.max_new_tokens = kTokens;
  g.sampling.greedy = true;
  c10::InferenceMode guard;
  std::vector<std::vector<int64_t>> merged_ids(kUsers), fused_ids;
  auto merged_run = [&] {
    for (int u = 0; u < kUsers; ++u) merged_ids[u] = generate(*merge_lora(*model, soups[u]), nullptr, prompt, g)[0].ids;
  };
  std::vector<const LoraAdapter*> rows;
  for (const auto& s : soups) rows.push_back(&s);
  LoraBatchHook hook(rows);
  auto fused_run = [&] {
    GenerateOptions f = g;
    f.linear_hook = &hook;
    fused_ids.clear();
    for (const auto& r : generate_each(*model, nullptr, std::vector<std::vector<int64_t>>(kUsers, prompt), f))
      fused_ids.push_back(r.ids);
  };
  merged_run();
  fused_run();
  const bool same = merged_ids == fused_ids;
  std::printf("check: %d users' soups merged one by one and as rows of one batch give the same greedy tokens: %s\n",
              kUsers, same ? "yes" : "NO");
  if (!same) return 1;
  const std::vector<double> soups_s = best_interleaved(3, {merged_run, fused_run});
  const double merged = soups_s[0], fused = soups_s[1];

  // P-DPO: one adapter, each user's tokens before the prompt; all users in one batch vs one user at a time.
  runtime::UserTokens user_tokens;
  {
    c10::InferenceMode off(false);
    std::vector<std::string> users;
    for (int u = 0; u < kUsers; ++u) users.push_back("u" + std::to_string(u));
    user_tokens = runtime::UserTokens::init(*model, users, 4, 0);
    user_tokens.individual = 0.05 * at::randn(user_tokens.individual.sizes());
  }
  const at::Tensor table = user_tokens.table();
  std::vector<std::vector<int64_t>> user_prompts;
  for (int u = 0; u < kUsers; ++u) {
    auto p = user_tokens.prefix(u + 1, c.vocab_size);
    p.insert(p.end(), prompt.begin(), prompt.end());
    user_prompts.push_back(p);
  }
  GenerateOptions pg = g;
  pg.linear_hook = &soups[0];
  pg.virtual_tokens = &table;
  std::vector<std::vector<int64_t>> one_ids(kUsers), batch_ids;
  auto pdpo_one = [&] {
    for (int u = 0; u < kUsers; ++u) one_ids[u] = generate(*model, nullptr, user_prompts[u], pg)[0].ids;
  };
  auto pdpo_batch = [&] {
    batch_ids.clear();
    for (const auto& r : generate_each(*model, nullptr, user_prompts, pg)) batch_ids.push_back(r.ids);
  };
  pdpo_one();
  pdpo_batch();
  const bool same_pdpo = one_ids == batch_ids;
  std::printf("check: %d P-DPO users one by one and as rows of one batch give the same greedy tokens: %s\n", kUsers,
              same_pdpo ? "yes" : "NO");
  if (!same_pdpo) return 1;
  const std::vector<double> pdpo_s = best_interleaved(3, {pdpo_one, pdpo_batch});
  const double pdpo_one_s = pdpo_s[0], pdpo_batch_s = pdpo_s[1];

  std::printf("| measure | value | baseline (same run) | ratio |\n|---|---|---|---|\n");
  std::printf("| DPO training, tokens/s (LoRA r=8 q/k/v/o, batch 8 pairs) | %.0f | %.0f (forward-only reference pass) "
              "| %.2fx |\n",
              train_tps, ref_tps, train_tps / ref_tps);
  std::printf("| reference log-probs, once before training | %.2f s for %zu pairs | | |\n", reference_seconds,
              pairs.size());
  std::printf("| peak memory (RSS) | %.0f MiB after training | %.0f MiB after loading the model | +%.0f MiB |\n",
              rss_trained, rss_loaded, rss_trained - rss_loaded);
  std::printf("| serving %d users' soups, %d tokens each | %.1f ms (one batched pass, a soup per row) | %.1f ms "
              "(each user's soup merged into a model, then decoded, one user after another) | %.2fx faster |\n",
              kUsers, kTokens, 1e3 * fused, 1e3 * merged, merged / fused);
  std::printf("| serving %d P-DPO users (one adapter, 4 user tokens each), %d tokens each | %.1f ms (one batched pass) "
              "| %.1f ms (one user after another) | %.2fx faster |\n",
              kUsers, kTokens, 1e3 * pdpo_batch_s, 1e3 * pdpo_one_s, pdpo_one_s / pdpo_batch_s);
  std::printf("| serving %d users: P-DPO in one pass vs per-user merged adapters | %.1f ms | %.1f ms (merged, one "
              "after another) | %.2fx faster |\n",
              kUsers, 1e3 * pdpo_batch_s, 1e3 * merged, merged / pdpo_batch_s);
  return 0;
}
