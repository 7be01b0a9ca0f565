// Training throughput: tokens/s of LM training steps (forward + backward + AdamW) through the runtime's model, and
// the achieved training FLOP/s as a share of this machine's matmul FLOP/s measured in the same run.
// Training FLOPs per token: 6 N + 12 L T d (PaLM appendix B: N parameters incl. the tied output matrix, L layers,
// T context, d attention width). First checks that a few steps lower the loss on a learnable sequence.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "bench_util.h"
#include "palign/runtime/model.h"
#include "palign/runtime/platform.h"
#include "palign/training/lm_trainer.h"

using namespace palign::runtime;
using palign::bench_util::Clock;
using palign::bench_util::seconds_since;

namespace {


// Best-of-5 FLOP/s of an [M, K] x [K, N] matmul (the training step's dominant shape family).
double matmul_flops(int64_t M, int64_t K, int64_t N) {
  at::Tensor a = at::randn({M, K}), b = at::randn({K, N});
  double best = 0;
  for (int i = 0; i < 7; ++i) {
    auto t0 = Clock::now();
    at::Tensor c = at::mm(a, b);
    (void)c.data_ptr<float>();
    if (i >= 2) best = std::max(best, 2.0 * M * K * N / seconds_since(t0));
  }
  return best;
}

struct Shape {
  const char* name;
  int64_t vocab, d, layers, heads, ffn, ctx, batch;
};


}  // namespace

int main() {
  std::printf("palign training bench: libtorch %s, %d torch threads, %s\n", TORCH_VERSION, at::get_num_threads(),
              blas_description().c_str());
  const Shape shapes[] = {{"small", 4096, 256, 4, 4, 704, 128, 16}, {"default", 4096, 256, 6, 4, 704, 128, 16}};
  std::printf("| shape   | params | tokens/step | tokens/s | train GFLOP/s | matmul GFLOP/s | ratio |\n");
  std::printf("|---------|--------|-------------|----------|---------------|----------------|-------|\n");
  for (const auto& s : shapes) {
    ModelConfig c;
    c.architecture = "LlamaForCausalLM";
    c.vocab_size = s.vocab;
    c.hidden_size = s.d;
    c.intermediate_size = s.ffn;
    c.n_layer = s.layers;
    c.n_head = c.n_kv_head = s.heads;
    c.head_dim = s.d / s.heads;
    c.max_position = s.ctx;
    c.tie_word_embeddings = true;
    auto w = palign::training::init_llama_weights(c, /*seed=*/0);
    auto model = Model::from_weights(c, w);
    std::vector<at::Tensor> params;
    for (auto& [n, t] : w) params.push_back(t);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(3e-3));
    // A learnable batch: a repeating pattern. The loss must fall before timing means anything.
    at::Tensor base = at::arange(s.ctx + 1, at::kLong).remainder(37);
    at::Tensor seq = base.unsqueeze(0).repeat({s.batch, 1});
    at::Tensor x = seq.narrow(1, 0, s.ctx), y = seq.narrow(1, 1, s.ctx);
    auto step = [&] {
      opt.zero_grad();
      at::Tensor logits = model->forward_full(x);
      at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, s.vocab}), y.reshape({-1}));
      loss.backward();
      opt.step();
      return loss.item<double>();
    };
    const double first = step();
    double last = first;
    for (int i = 0; i < 4; ++i) last = step();
    if (!(last < first)) {
      std::printf("check FAILED: loss did not fall (%.3f -> %.3f)\n", first, last);
      return 1;
    }
    const int reps = 6;
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) step();
    const double secs = seconds_since(t0);
    const double tokens = static_cast<double>(reps) * s.batch * s.ctx;
    const double n_params = static_cast<double>(model->n_params());
    const double flops_per_token = 6 * n_params + 12.0 * s.layers * s.ctx * s.d;
    const double achieved = flops_per_token * tokens / secs;
    const double peak = matmul_flops(s.batch * s.ctx, s.d, s.ffn);
    std::printf("| %-7s | %5.2fM | %11ld | %8.0f | %13.1f | %14.1f | %4.1f%% |\n", s.name, n_params / 1e6,
                static_cast<long>(s.batch * s.ctx), tokens / secs, achieved / 1e9, peak / 1e9, 100 * achieved / peak);
    std::printf("{\"bench\":\"training\",\"shape\":\"%s\",\"params\":%.0f,\"tokens_per_s\":%.1f,\"train_gflops\":%.2f,"
                "\"matmul_gflops\":%.2f,\"ratio\":%.4f,\"loss_first\":%.3f,\"loss_after_5\":%.3f}\n",
                s.name, n_params, tokens / secs, achieved / 1e9, peak / 1e9, achieved / peak, first, last);
  }
  return 0;
}
