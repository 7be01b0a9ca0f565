// apply_linear (see linear.h): the inference linears of the forward pass, sized for the BLAS, with the small-batch
// kernel (small_gemm.cpp) for a few rows.
#include "palign/runtime/linear.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

namespace palign::runtime {

namespace {
// Without grad mode, up to kSmallBatchMaxRows float32 rows against an input-major weight go through
// small_batch_linear (small_gemm.cpp) on CPUs with AVX2 or AVX-512: each weight read once for all rows, a row's result
// independent of the batch. Otherwise, OpenBLAS 0.3.21 (DYNAMIC_ARCH, SkylakeX/Cooperlake kernels) multiplies with its
// small-matrix kernel only when M·N·K <= 1e6 and, for libtorch's transposed-weight call (TN, M = out features, N =
// rows), M·N <= 1200; otherwise it packs both operands first, which costs 40-50 us however small the product. So a
// linear over a few rows runs as column blocks of at most 1200 / rows output features, each one small-kernel call
// (measured, 1 thread, us, weights hot in cache):
//   out x in     rows:  1 linear/blocks    3 linear/blocks    10 linear/blocks    16 linear/blocks
//   704 x 256              8.6 / 9.6        57.4 / 16.1        75.2 / 47.6         88.2 / 77.6
//   256 x 704              8.5 / 9.4        13.4 / 14.3        76.7 / 39.1         93.0 / 61.7
//   4096 x 256 (LM head) 264.4 / 65.9      332.2 / 109.5      429.5 / 289.1       514.8 / 459.8
// One row through the LM head is faster still as a gemv (57 us).
// This BLAS path against the kernels, weights streamed from L3 as in a decode step (./build/bench/linear_bench; busy
// 2-core AMD EPYC Zen 4, 1 thread, us, two runs):
//   out x in, rows       BLAS          avx2          avx512
//   704 x 256, 1         19-20         19            20
//   704 x 256, 3         31-34         17-18         21
//   704 x 256, 10        58-61         44-45         40
//   704 x 256, 16        78-84         70-71         61
//   704 x 256, 32        146-166       137-138       119-121
//   4096 x 256, 1        48-49         96-98         88-90
//   4096 x 256, 3        250-252       138-139       128-132
//   4096 x 256, 10       532-537       359-366       250-254
//   4096 x 256, 16       527-533       500-524       357-359
//   4096 x 256, 32       1047-1051     987-1040      709-715
// The kernels lose only to the gemv of one row through the LM head; they keep that case too, for the batch
// independence.
constexpr int64_t kSmallGemmMacs = 1000000;
constexpr int64_t kSmallGemmOutRows = 1200;
constexpr int64_t kMaxBlockedRows = 32;  // beyond this one large gemm is as fast
}  // namespace

at::Tensor apply_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel) {
  if (small_batch_linear_supports(x, w, b, kernel)) return small_batch_linear(x, w, b, kernel);
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / std::max<int64_t>(in, 1);
  if (rows < 1 || rows > kMaxBlockedRows || rows * out <= kSmallGemmOutRows) return at::linear(x, w, b);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  const at::Tensor x2 = x.reshape({rows, in});
  const bool grad = at::GradMode::is_enabled();
  if (rows == 1) {
    if (grad || out * in <= kSmallGemmMacs) return at::linear(x, w, b);
    at::Tensor y = at::empty({rows, out}, x.options());
    at::Tensor y_row = y[0];
    at::mv_out(y_row, w, x2[0]);
    return (b.defined() ? y + b : y).view(shape);
  }
  const int64_t block = std::min(kSmallGemmOutRows / rows, kSmallGemmMacs / (rows * in)) / 8 * 8;
  if (block < 8) return at::linear(x, w, b);
  if (grad) {
    // The same blocks through at::linear, which records the graph: a row's outputs are bitwise those of inference
    // where small_batch_linear does not apply.
    std::vector<at::Tensor> parts;
    for (int64_t col = 0; col < out; col += block) {
      const int64_t n = std::min(block, out - col);
      parts.push_back(at::linear(x2, w.narrow(0, col, n), b.defined() ? b.narrow(0, col, n) : at::Tensor()));
    }
    return at::cat(parts, 1).view(shape);
  }
  at::Tensor y = at::empty({rows, out}, x.options());
  for (int64_t col = 0; col < out; col += block) {
    const int64_t n = std::min(block, out - col);
    at::Tensor y_part = y.narrow(1, col, n);
    const at::Tensor w_part = w.narrow(0, col, n).t();
    if (b.defined()) {
      at::addmm_out(y_part, b.narrow(0, col, n), x2, w_part);
    } else {
      at::mm_out(y_part, x2, w_part);
    }
  }
  return y.view(shape);
}

}  // namespace palign::runtime
