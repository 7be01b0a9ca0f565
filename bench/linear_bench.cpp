// The small-batch linear kernels (runtime/linear.h) against the BLAS path they replace, per shape and row count, as a
// decode step meets them: weights streamed from L3 (copies of each weight cycled through ~24 MB, a forward's worth of
// the default model), one thread. Checks first that every kernel gives at::linear's values (max-abs-diff printed),
// then prints, per case, the best of 40 calls for each kernel and its speed-up over BLAS in the same run.
// Usage: linear_bench
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "palign/runtime/linear.h"
#include "palign/runtime/platform.h"

using namespace palign;
using namespace palign::runtime;
using bench_util::Clock;
using bench_util::seconds_since;

int main() {
  std::printf("palign linear bench: libtorch %s, %d torch threads, %s; best kernel on this CPU: %s\n", TORCH_VERSION,
              at::get_num_threads(), blas_description().c_str(),
              std::string(linear_kernel_name(best_linear_kernel())).c_str());
  c10::InferenceMode guard;
  std::vector<LinearKernel> kernels;
  for (const LinearKernel k : {LinearKernel::kAvx2, LinearKernel::kAvx512})
    if (k <= best_linear_kernel()) kernels.push_back(k);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{256, 256}, {704, 256}, {256, 704}, {4096, 256}};
  const std::vector<int64_t> row_counts = {1, 3, 10, 16, 32};

  // Check: each kernel against at::linear on every case.
  at::manual_seed(1);
  bool ok = true;
  for (const LinearKernel k : kernels) {
    double worst = 0;
    for (const auto& [out, in] : shapes)
      for (const int64_t rows : row_counts) {
        const at::Tensor w = at::randn({in, out}).t(), b = at::randn({out}), x = at::randn({rows, in});
        if (!small_batch_linear_supports(x, w, b, k)) ok = false;
        const double d = (apply_linear(x, w, b, k) - at::linear(x, w, b)).abs().max().item<double>() / std::sqrt(in);
        worst = std::max(worst, d);
      }
    std::printf("check: %s kernel vs at::linear, max-abs-diff / sqrt(in) = %.3g\n",
                std::string(linear_kernel_name(k)).c_str(), worst);
    if (worst > 1e-5) ok = false;
  }
  if (!ok) {
    std::printf("check FAILED\n");
    return 1;
  }

  std::printf("\n| out x in | rows | BLAS us |");
  for (const LinearKernel k : kernels)
    std::printf(" %s us | BLAS / %s |", std::string(linear_kernel_name(k)).c_str(),
                std::string(linear_kernel_name(k)).c_str());
  std::printf("\n|---|---|---|");
  for (size_t i = 0; i < kernels.size(); ++i) std::printf("---|---|");
  std::printf("\n");
  constexpr int64_t kPoolBytes = 24 << 20;
  for (const auto& [out, in] : shapes) {
    const int64_t copies = std::max<int64_t>(2, kPoolBytes / (out * in * 4));
    std::vector<at::Tensor> pool;
    for (int64_t i = 0; i < copies; ++i) pool.push_back(at::randn({in, out}).t());
    for (const int64_t rows : row_counts) {
      const at::Tensor x = at::randn({rows, in});
      std::vector<LinearKernel> order = {LinearKernel::kBlas};
      order.insert(order.end(), kernels.begin(), kernels.end());
      std::vector<double> best(order.size(), 1e30);
      // Interleaved: every kernel once per round, each call on the next weight copy (evicted from L2 since its use).
      size_t next = 0;
      for (int round = 0; round < 41; ++round)
        for (size_t k = 0; k < order.size(); ++k) {
          const at::Tensor& w = pool[next++ % pool.size()];
          const auto t0 = Clock::now();
          const at::Tensor y = apply_linear(x, w, {}, order[k]);
          const double t = seconds_since(t0);
          if (round > 0) best[k] = std::min(best[k], t);
        }
      std::printf("| %ld x %ld | %ld | %.1f |", static_cast<long>(out), static_cast<long>(in), static_cast<long>(rows),
                  1e6 * best[0]);
      for (size_t k = 1; k < order.size(); ++k) std::printf(" %.1f | %.2fx |", 1e6 * best[k], best[0] / best[k]);
      std::printf("\n");
    }
  }
  return 0;
}
