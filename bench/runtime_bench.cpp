// Runtime throughput: prefill and decode tokens/s at batch 1 and 8, on a fixture model and on a ~20M-parameter
// random model of Llama shape, beside the same run's bandwidth-bound estimate (weight bytes read per decode step /
// measured memory read bandwidth). Checks cached decoding against a full recompute before timing anything.
// Excluded from the times: tokenization and sampling (argmax only), as llama-bench does.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "palign/base/timer.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/training/lm_trainer.h"

using namespace palign::runtime;
using palign::Clock;
using palign::seconds_since;

namespace {

struct Stats {
  double mean = 0, sd = 0;
};

template <typename F>
Stats repeat(int warmup, int reps, F&& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> xs;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    xs.push_back(seconds_since(t0));
  }
  Stats s;
  for (double x : xs) s.mean += x / xs.size();
  for (double x : xs) s.sd += (x - s.mean) * (x - s.mean) / std::max<size_t>(xs.size() - 1, 1);
  s.sd = std::sqrt(s.sd);
  return s;
}

// Read bandwidth in bytes/s: every hardware thread sums its slice of a 512 MiB buffer (far larger than the
// caches); best of several runs. Using all threads matters: OpenBLAS reads weights with all of them.
double measure_read_bandwidth() {
  const size_t n = 128u * 1024 * 1024;
  std::vector<float> buf(n, 1.0f);
  const unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<double> partial(n_threads, 0.0);
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < n_threads; ++t) {
      threads.emplace_back([&, t] {
        const size_t lo = n * t / n_threads, hi = n * (t + 1) / n_threads;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = lo; i + 8 <= hi; i += 8)
          for (int j = 0; j < 8; ++j) acc[j] += buf[i + j];
        partial[t] = acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
      });
    }
    for (auto& th : threads) th.join();
    const double secs = seconds_since(t0);
    double total = 0;
    for (double p : partial) total += p;
    if (total != static_cast<double>(n)) std::printf("bandwidth probe: bad sum %.0f\n", total);
    best = std::max(best, n * 4.0 / secs);
  }
  return best;
}

std::unique_ptr<Model> random_llama_20m() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.arch = Arch::kLlama;
  c.vocab_size = 8192;
  c.hidden_size = 512;
  c.intermediate_size = 1376;
  c.n_layer = 6;
  c.n_head = 8;
  c.n_kv_head = 4;
  c.head_dim = 64;
  c.max_position = 2048;
  c.tie_word_embeddings = true;
  c.rope.theta = 10000;
  return Model::from_weights(c, palign::training::init_llama_weights(c, /*seed=*/0, /*requires_grad=*/false));
}

// Cached decode must equal a full recompute before any timing.
bool check_model(const Model& m) {
  std::vector<int64_t> ids;
  for (int i = 0; i < 24; ++i) ids.push_back((i * 37 + 5) % m.config().vocab_size);
  at::Tensor full = m.forward_full(at::tensor(ids, at::kLong));
  KvCache cache = m.make_cache(1);
  m.forward(Batch{.ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 12), at::kLong).unsqueeze(0)},
            cache);
  double worst = 0;
  for (size_t t = 12; t < ids.size(); ++t) {
    at::Tensor step = m.forward(Batch{.ids = at::tensor({ids[t]}, at::kLong).unsqueeze(0)}, cache,
                                {.logits = ForwardOptions::Logits::kLast})
                          .logits[0];
    worst = std::max(worst, (step - full[t]).abs().max().item<double>());
  }
  std::printf("check: cached decode vs full recompute max-abs-diff = %.3g %s\n", worst, worst < 1e-4 ? "OK" : "FAIL");
  return worst < 1e-4;
}

void bench_model(const std::string& name, const Model& m, double bandwidth, int64_t prompt_len, int64_t n_decode) {
  const int64_t V = m.config().vocab_size;
  const double weight_bytes = m.n_params() * 4.0;
  for (int64_t B : {1, 8}) {
    at::Tensor prompt = at::randint(V, {B, prompt_len}, at::kLong);
    Stats pre = repeat(1, 5, [&] {
      KvCache cache = m.make_cache(B, prompt_len);
      m.forward(Batch{.ids = prompt}, cache, {.logits = ForwardOptions::Logits::kLast});
    });
    KvCache cache = m.make_cache(B, prompt_len + n_decode + 8);
    Stats dec = repeat(1, 5, [&] {
      cache.clear();
      at::Tensor logits = m.forward(Batch{.ids = prompt}, cache, {.logits = ForwardOptions::Logits::kLast}).logits;
      auto t0 = Clock::now();
      for (int64_t s = 0; s < n_decode; ++s) {
        at::Tensor next = logits.argmax(-1).unsqueeze(1);
        logits = m.forward(Batch{.ids = next}, cache, {.logits = ForwardOptions::Logits::kLast}).logits;
      }
      (void)t0;
    });
    // The decode repeat includes one prefill; subtract its mean.
    const double decode_s = std::max(dec.mean - pre.mean, 1e-9);
    const double prefill_tps = B * prompt_len / pre.mean;
    const double decode_tps = B * n_decode / decode_s;
    const double bound_tps = B * bandwidth / weight_bytes;  // every decode step reads all weights once
    std::printf("| %-10s | %5.1fM | %2ld | %8.0f ± %5.0f | %8.1f | %8.1f | %5.1f%% |\n", name.c_str(),
                m.n_params() / 1e6, static_cast<long>(B), prefill_tps, prefill_tps * pre.sd / pre.mean, decode_tps,
                bound_tps, 100.0 * decode_tps / bound_tps);
    std::printf("{\"bench\":\"runtime\",\"model\":\"%s\",\"params\":%ld,\"batch\":%ld,\"prefill_tps\":%.1f,"
                "\"decode_tps\":%.1f,\"bound_tps\":%.1f,\"ratio\":%.3f,\"torch\":\"%s\"}\n",
                name.c_str(), static_cast<long>(m.n_params()), static_cast<long>(B), prefill_tps, decode_tps,
                bound_tps, decode_tps / bound_tps, TORCH_VERSION);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string fixture = argc > 1 ? argv[1] : std::string(PALIGN_SOURCE_DIR) + "/tests/data/hf/models/llama";
  std::printf("palign runtime bench: libtorch %s, %d threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              blas_description().c_str());
  auto fixture_model = Model::load(fixture);
  auto model20m = random_llama_20m();
  if (!check_model(*fixture_model) || !check_model(*model20m)) return 1;
  std::printf("All results match. Starting benchmarks.\n");
  const double bw = measure_read_bandwidth();
  std::printf("measured read bandwidth: %.2f GB/s\n", bw / 1e9);
  std::printf("prefill: 64-token prompt; decode: 64 tokens after it, one batched forward per step.\n");
  std::printf("bound = batch x bandwidth / (f32 weight bytes); ratio = decode / bound.\n\n");
  std::printf("| model      | params | B  | prefill tok/s    | decode t/s | bound t/s | ratio  |\n");
  std::printf("|------------|--------|----|------------------|------------|-----------|--------|\n");
  bench_model("fixture", *fixture_model, bw, 64, 64);
  bench_model("llama-20m", *model20m, bw, 64, 64);
  return 0;
}
