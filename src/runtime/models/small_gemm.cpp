// The small-batch inference linear: y = x W^T + b for a few float32 rows against an input-major weight (W^T stored
// [in][out], as use_transposed_layout in model.cpp keeps inference weights), reading each weight once for all rows.
// Plain C++ over GCC/Clang vector types compiled for x86-64-v4 (AVX-512) and used when the CPU has it; elsewhere
// small_batch_linear_supports is false and apply_linear keeps its BLAS path. Not a general GEMM (no packing, no
// autograd). Compare the BLAS path it replaces in apply_linear (attention.cpp).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "models/internal.h"
#include "palign/runtime/linear.h"

namespace palign::runtime {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PALIGN_SMALL_GEMM 1
#else
#define PALIGN_SMALL_GEMM 0
#endif

#if PALIGN_SMALL_GEMM
namespace {

// note: AVX-512 only. The same source cloned for AVX2 (x86-64-v3) ran 5-9x slower than OpenBLAS: GCC 12 lowers
// these 64-byte vectors to pairs of ymm registers through the stack. A 32-byte variant for AVX2 is future work.
#define PALIGN_GEMM_TARGET __attribute__((target("arch=x86-64-v4")))

// Sixteen floats: one AVX-512 register. aligned(4): loads from any float address.
typedef float Vec16 __attribute__((vector_size(64), aligned(4)));
constexpr int kLanes = 16;
// Weight rows per pass over the column strips. Walking one strip down all rows touches a new page per row (the LM
// head's rows are 16 KiB apart) and ran at a third of the bandwidth; a pass of kChunk rows across all strips keeps
// kChunk pages in use. 16 measured fastest of 8..64.
constexpr int64_t kChunk = 16;

// One strip of S * 16 output columns over weight rows [k0, k1) for R rows: R x S accumulators in registers, each
// weight vector loaded once and used for all R rows. Prefetches the same strip of the next chunk into L2 (a whole
// pass ahead; into L1 it would evict the rows in use, which share a set when the row stride is a multiple of 4 KiB).
// xt: [in][R] (the group's rows interleaved); wt: the strip's first weight column, row stride ldw;
// acc: [S][R][16] partial sums, read unless first.
template <int R, int S>
[[gnu::always_inline]] inline void strip(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                         float* acc, bool first) {
  Vec16 sum[R][S];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r) {
      if (first) {
        sum[r][s] = Vec16{};
      } else {
        std::memcpy(&sum[r][s], acc + (s * R + r) * kLanes, sizeof(Vec16));
      }
    }
  for (int64_t i = k0; i < k1; ++i) {
    const float* w_row = wt + i * ldw;
    for (int s = 0; s < S; ++s) __builtin_prefetch(w_row + kChunk * ldw + kLanes * s, /*rw=*/0, /*locality=*/2);
    Vec16 w[S];
    for (int s = 0; s < S; ++s) std::memcpy(&w[s], w_row + kLanes * s, sizeof(Vec16));
    for (int r = 0; r < R; ++r) {
      const float xv = xt[i * R + r];
      for (int s = 0; s < S; ++s) sum[r][s] += xv * w[s];
    }
  }
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r) std::memcpy(acc + (s * R + r) * kLanes, &sum[r][s], sizeof(Vec16));
}

// The last n < 16 columns, same arithmetic per element as strip().
template <int R>
[[gnu::always_inline]] inline void strip_tail(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                              float* acc, bool first, int64_t n) {
  float sum[R][kLanes];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kLanes; ++c) sum[r][c] = first ? 0.0f : acc[r * kLanes + c];
  for (int64_t i = k0; i < k1; ++i) {
    const float* w_row = wt + i * ldw;
    for (int r = 0; r < R; ++r) {
      const float xv = xt[i * R + r];
      for (int64_t c = 0; c < n; ++c) sum[r][c] += xv * w_row[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kLanes; ++c) acc[r * kLanes + c] = sum[r][c];
}

// Columns [col, n) in strips of S vectors, then halving S for what remains. acc: [ceil(n / 16)][R][16].
template <int R, int S>
[[gnu::always_inline]] inline void columns(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                           float* acc, bool first, int64_t col, int64_t n) {
  for (; col + kLanes * S <= n; col += kLanes * S) strip<R, S>(xt, k0, k1, wt + col, ldw, acc + col * R, first);
  if constexpr (S > 1) {
    columns<R, S / 2>(xt, k0, k1, wt, ldw, acc, first, col, n);
  } else if (col < n) {
    strip_tail<R>(xt, k0, k1, wt + col, ldw, acc + col * R, first, n - col);
  }
}

// Strip width for R rows: the widest power of two up to 8 vectors with R * S accumulators within the register budget.
constexpr int strip_vectors(int rows, int budget) {
  int s = 8;
  while (s > 1 && rows * s > budget) s /= 2;
  return s;
}

// Accumulator vectors kept in registers: 16 of AVX-512's 32, the rest hold weights and a broadcast.
constexpr int kRegisterBudget = 16;

template <int R>
[[gnu::always_inline]] inline void group(const float* xt, int64_t in, const float* wt, int64_t ldw, float* acc,
                                         int64_t n) {
  for (int64_t k0 = 0; k0 < in; k0 += kChunk) {
    const int64_t k1 = std::min(in, k0 + kChunk);
    columns<R, strip_vectors(R, kRegisterBudget)>(xt, k0, k1, wt, ldw, acc, k0 == 0, 0, n);
  }
}

constexpr int kMaxGroupRows = 16;

// One group of `rows` (1..16) rows over n weight columns.
PALIGN_GEMM_TARGET
void run_group(const float* xt, int rows, int64_t in, const float* wt, int64_t ldw, float* acc, int64_t n) {
  switch (rows) {
#define PALIGN_GEMM_ROWS(R)                \
  case R:                                  \
    group<R>(xt, in, wt, ldw, acc, n); \
    break;
    PALIGN_GEMM_ROWS(1) PALIGN_GEMM_ROWS(2) PALIGN_GEMM_ROWS(3) PALIGN_GEMM_ROWS(4) PALIGN_GEMM_ROWS(5)
    PALIGN_GEMM_ROWS(6) PALIGN_GEMM_ROWS(7) PALIGN_GEMM_ROWS(8) PALIGN_GEMM_ROWS(9) PALIGN_GEMM_ROWS(10)
    PALIGN_GEMM_ROWS(11) PALIGN_GEMM_ROWS(12) PALIGN_GEMM_ROWS(13) PALIGN_GEMM_ROWS(14) PALIGN_GEMM_ROWS(15)
    PALIGN_GEMM_ROWS(16)
#undef PALIGN_GEMM_ROWS
    default:
      break;
  }
}

// The features of x86-64-v4, which run_group is compiled for.
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512cd");
}

// Columns [c0, c1) of y for all rows. x: [rows, in] contiguous; wt: [in][ldw] (W^T); y: [rows, out] contiguous.
void small_gemm(const float* x, int64_t rows, int64_t in, const float* wt, int64_t ldw, const float* bias, float* y,
                int64_t out, int64_t c0, int64_t c1) {
  const int64_t n_groups = (rows + kMaxGroupRows - 1) / kMaxGroupRows;
  const int64_t per_group = (rows + n_groups - 1) / n_groups;
  const int64_t n = c1 - c0;
  thread_local std::vector<float> xt, acc;
  for (int64_t r0 = 0; r0 < rows; r0 += per_group) {
    const int64_t R = std::min(per_group, rows - r0);
    xt.resize(static_cast<size_t>(in * R));
    for (int64_t i = 0; i < in; ++i)
      for (int64_t r = 0; r < R; ++r) xt[i * R + r] = x[(r0 + r) * in + i];
    acc.resize(static_cast<size_t>((n + kLanes - 1) / kLanes * kLanes * R));
    run_group(xt.data(), static_cast<int>(R), in, wt + c0, ldw, acc.data(), n);
    for (int64_t v = 0; v * kLanes < n; ++v) {
      const int64_t col = v * kLanes, width = std::min<int64_t>(kLanes, n - col);
      for (int64_t r = 0; r < R; ++r) {
        const float* sum = acc.data() + (v * R + r) * kLanes;
        float* y_row = y + (r0 + r) * out + c0 + col;
        if (bias) {
          for (int64_t c = 0; c < width; ++c) y_row[c] = sum[c] + bias[c0 + col + c];
        } else {
          std::memcpy(y_row, sum, static_cast<size_t>(width) * sizeof(float));
        }
      }
    }
  }
}

}  // namespace
#endif  // PALIGN_SMALL_GEMM

bool small_batch_linear_supports(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
#if PALIGN_SMALL_GEMM
  static const bool cpu_ok = cpu_has_avx512();
#else
  constexpr bool cpu_ok = false;
#endif
  if (!cpu_ok || at::GradMode::is_enabled()) return false;
  if (!x.defined() || !w.defined() || w.dim() != 2 || x.dim() < 1) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || !x.device().is_cpu() || !w.device().is_cpu())
    return false;
  const int64_t out = w.size(0), in = w.size(1);
  if (in < 1 || out < 1 || x.size(-1) != in) return false;
  const int64_t rows = x.numel() / in;
  if (rows < 1 || rows > kSmallBatchMaxRows) return false;
  // Input-major: w = (W^T).t() with W^T's rows contiguous.
  if (w.stride(0) != 1 || w.stride(1) < out) return false;
  return !b.defined() ||
         (b.dim() == 1 && b.size(0) == out && b.scalar_type() == at::kFloat && b.device().is_cpu());
}

at::Tensor small_batch_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t out = w.size(0), in = w.size(1), rows = x.numel() / in;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = out;
  at::Tensor y = at::empty({rows, out}, x.options());
#if PALIGN_SMALL_GEMM
  const at::Tensor x2 = x.reshape({rows, in}).contiguous();
  const at::Tensor bias = b.defined() ? b.contiguous() : at::Tensor();
  const float* x_data = x2.data_ptr<float>();
  const float* w_data = w.data_ptr<float>();
  const float* b_data = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* y_data = y.data_ptr<float>();
  const int64_t ldw = w.stride(1);
  // Threads split the columns in blocks of 256 (whole strips); a block of fewer than kParallelMacs multiply-adds
  // stays on the calling thread.
  constexpr int64_t kBlock = 256, kParallelMacs = 1 << 19;
  const int64_t n_blocks = (out + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, kParallelMacs / (rows * in * kBlock));
  at::parallel_for(0, n_blocks, grain, [&](int64_t begin, int64_t end) {
    small_gemm(x_data, rows, in, w_data, ldw, b_data, y_data, out, begin * kBlock, std::min(out, end * kBlock));
  });
#endif
  return y.view(shape);
}

}  // namespace palign::runtime
