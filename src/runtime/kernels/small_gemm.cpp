// The small-batch inference linear: y = x W^T + b for a few float32 rows against an input-major weight (W^T stored
// [in][out], as use_transposed_layout in model.cpp keeps inference weights), reading each weight once for all rows.
// Plain C++ over GCC/Clang vector types, compiled twice: for x86-64-v4 (AVX-512, 16-float vectors) and x86-64-v3
// (AVX2, 8-float vectors); the CPU's best runs. Elsewhere small_batch_linear_supports is false and apply_linear keeps
// its BLAS path. Not a general GEMM (no packing, no autograd). Compare the BLAS path it replaces in apply_linear
// (linear.cpp); ./build/bench/linear_bench times them against each other.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "models/internal.h"
#include "palign/base/error.h"
#include "palign/runtime/linear.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // vector helpers are always inlined into one ISA's code

namespace palign::runtime {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PALIGN_SMALL_GEMM 1
#else
#define PALIGN_SMALL_GEMM 0
#endif

#if PALIGN_SMALL_GEMM
namespace {

// Float vectors of one register: 16 lanes for AVX-512, 8 for AVX2 (GCC 12 lowers 64-byte vectors compiled for AVX2 to
// pairs of ymm registers through the stack, which ran 5-9x slower than OpenBLAS). Kernels are templates over the lane
// count L; Vec<L> is the vector of L floats.
template <int L>
struct VecOf;
template <>
struct VecOf<16> {
  typedef float type __attribute__((vector_size(64)));
  typedef float unaligned __attribute__((vector_size(64), aligned(4)));
};
template <>
struct VecOf<8> {
  typedef float type __attribute__((vector_size(32)));
  typedef float unaligned __attribute__((vector_size(32), aligned(4)));
};
template <int L>
using Vec = typename VecOf<L>::type;

// Vector loads and stores at any float address (GCC's vector types alias their element type).
template <int L>
[[gnu::always_inline]] inline Vec<L> load(const float* p) {
  return *reinterpret_cast<const typename VecOf<L>::unaligned*>(p);
}
template <int L>
[[gnu::always_inline]] inline void store(float* p, Vec<L> v) {
  *reinterpret_cast<typename VecOf<L>::unaligned*>(p) = v;
}

// Weight rows per pass over the column strips. Walking one strip down all rows touches a new page per row (the LM
// head's rows are 16 KiB apart) and ran at a third of the bandwidth; a pass of kChunk rows across all strips keeps
// kChunk pages in use. 16 measured fastest of 8..64.
constexpr int64_t kChunk = 16;

// One strip of S vectors of output columns over weight rows [k0, k1) for rows [R0, R0 + T) of a group of R rows:
// T x S accumulators in registers, each weight vector loaded once and used for all T rows. Prefetches the same strip
// of the next chunk into L2 (a whole pass ahead; into L1 it would evict the rows in use, which share a set when the
// row stride is a multiple of 4 KiB); the group's next tile reads the strip again from L1. xt: [in][R] (the group's
// rows interleaved); wt: the strip's first weight column, row stride ldw; acc: [S][R][L] partial sums, read unless
// first.
template <int L, int R, int R0, int T, int S>
[[gnu::always_inline]] inline void strip(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                         float* acc, bool first) {
  Vec<L> sum[T][S];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < T; ++r) sum[r][s] = first ? Vec<L>{} : load<L>(acc + (s * R + R0 + r) * L);
  const auto step = [&](int64_t i) [[gnu::always_inline]] {
    const float* w_row = wt + i * ldw;
    if constexpr (R0 == 0)
      for (int s = 0; s < S * L; s += 16) __builtin_prefetch(w_row + kChunk * ldw + s, /*rw=*/0, /*locality=*/2);
    if constexpr (L == 16 || S <= T) {  // the S weight vectors held, one broadcast at a time
      Vec<L> w[S];
      for (int s = 0; s < S; ++s) w[s] = load<L>(w_row + L * s);
      for (int r = 0; r < T; ++r) {
        const float xv = xt[i * R + R0 + r];
        for (int s = 0; s < S; ++s) sum[r][s] += xv * w[s];
      }
    } else {  // the T broadcasts held, one weight vector at a time
      float xv[T];
      for (int r = 0; r < T; ++r) xv[r] = xt[i * R + R0 + r];
      for (int s = 0; s < S; ++s) {
        const Vec<L> w = load<L>(w_row + L * s);
        for (int r = 0; r < T; ++r) sum[r][s] += xv[r] * w;
      }
    }
  };
  if (k1 - k0 == kChunk) {  // a whole chunk, unrolled: no loop branch to mispredict every 16 rows
#pragma GCC unroll 16
    for (int64_t i = 0; i < kChunk; ++i) step(k0 + i);
  } else {
    for (int64_t i = k0; i < k1; ++i) step(i);
  }
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < T; ++r) store<L>(acc + (s * R + R0 + r) * L, sum[r][s]);
}

// Rows [R0, R) of one strip in tiles of T rows (the last may be smaller).
template <int L, int R, int R0, int T, int S>
[[gnu::always_inline]] inline void tiles(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                         float* acc, bool first) {
  constexpr int rows = std::min(T, R - R0);
  strip<L, R, R0, rows, S>(xt, k0, k1, wt, ldw, acc, first);
  if constexpr (R0 + rows < R) tiles<L, R, R0 + rows, T, S>(xt, k0, k1, wt, ldw, acc, first);
}

// The last n < lanes columns, same arithmetic per element as strip().
template <int L, int R>
[[gnu::always_inline]] inline void strip_tail(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                              float* acc, bool first, int64_t n) {
  float sum[R][L];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < L; ++c) sum[r][c] = first ? 0.0f : acc[r * L + c];
  for (int64_t i = k0; i < k1; ++i) {
    const float* w_row = wt + i * ldw;
    for (int r = 0; r < R; ++r) {
      const float xv = xt[i * R + r];
      for (int64_t c = 0; c < n; ++c) sum[r][c] += xv * w_row[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < L; ++c) acc[r * L + c] = sum[r][c];
}

// Columns [col, n) in strips of S vectors, then halving S for what remains. acc: [ceil(n / lanes)][R][lanes].
template <int L, int R, int T, int S>
[[gnu::always_inline]] inline void columns(const float* xt, int64_t k0, int64_t k1, const float* wt, int64_t ldw,
                                           float* acc, bool first, int64_t col, int64_t n) {
  for (; col + L * S <= n; col += L * S) tiles<L, R, 0, T, S>(xt, k0, k1, wt + col, ldw, acc + col * R, first);
  if constexpr (S > 1) {
    columns<L, R, T, S / 2>(xt, k0, k1, wt, ldw, acc, first, col, n);
  } else if (col < n) {
    strip_tail<L, R>(xt, k0, k1, wt + col, ldw, acc + col * R, first, n - col);
  }
}

// Register tiles. AVX-512 (32 registers): up to 16 rows with T * S <= 16 accumulators, measured faster than
// filling more. AVX2 (16 registers): tiles of up to 6 rows, whose T * S accumulators, the S weight vectors or the T
// broadcasts in use beside them and one spare fit (6 x 2, as BLAS micro-kernels for AVX2 use).
template <int L>
constexpr int kMaxTileRows = L == 16 ? 16 : 6;

// A group of R rows splits into equal tiles of at most kMaxTileRows (the last smaller).
template <int L>
constexpr int tile_rows(int rows) {
  const int n_tiles = (rows + kMaxTileRows<L> - 1) / kMaxTileRows<L>;
  return (rows + n_tiles - 1) / n_tiles;
}

// Strip width for a tile of T rows: the widest power of two up to 8 vectors that fits.
template <int L>
constexpr int strip_vectors(int t) {
  int s = 8;
  if constexpr (L == 16) {
    while (s > 1 && t * s > 16) s /= 2;
  } else {
    while (s > 1 && t * s + std::min(t, s) + 1 > 16) s /= 2;
  }
  return s;
}

template <int L, int R>
[[gnu::always_inline]] inline void group(const float* xt, int64_t in, const float* wt, int64_t ldw, float* acc,
                                         int64_t n) {
  constexpr int T = tile_rows<L>(R);
  for (int64_t k0 = 0; k0 < in; k0 += kChunk) {
    const int64_t k1 = std::min(in, k0 + kChunk);
    columns<L, R, T, strip_vectors<L>(T)>(xt, k0, k1, wt, ldw, acc, k0 == 0, 0, n);
  }
}

constexpr int kMaxGroupRows = 16;

// group<L, rows> for a run-time row count in [R, kMaxGroupRows].
template <int L, int R = 1>
[[gnu::always_inline]] inline void any_group(int rows, const float* xt, int64_t in, const float* wt, int64_t ldw,
                                             float* acc, int64_t n) {
  if constexpr (R <= kMaxGroupRows) {
    if (rows == R) {
      group<L, R>(xt, in, wt, ldw, acc, n);
    } else {
      any_group<L, R + 1>(rows, xt, in, wt, ldw, acc, n);
    }
  }
}

// One group of `rows` (1..16) rows over n weight columns, per ISA. acc: [ceil(n / lanes)][rows][lanes].
__attribute__((target("arch=x86-64-v4"))) void run_group_avx512(const float* xt, int rows, int64_t in, const float* wt,
                                                                int64_t ldw, float* acc, int64_t n) {
  any_group<16>(rows, xt, in, wt, ldw, acc, n);
}
__attribute__((target("arch=x86-64-v3"))) void run_group_avx2(const float* xt, int rows, int64_t in, const float* wt,
                                                              int64_t ldw, float* acc, int64_t n) {
  any_group<8>(rows, xt, in, wt, ldw, acc, n);
}

// The kernel this CPU runs: x86-64-v4's features for AVX-512, x86-64-v3's (AVX2, FMA, ...) for AVX2.
LinearKernel cpu_best_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return LinearKernel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
      __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("movbe") && __builtin_cpu_supports("f16c"))
    return LinearKernel::kAvx2;
  return LinearKernel::kBlas;
}

// Columns [c0, c1) of y for all rows. x: [rows, in] contiguous; wt: [in][ldw] (W^T); y: [rows, out] contiguous.
void small_gemm(LinearKernel kernel, const float* x, int64_t rows, int64_t in, const float* wt, int64_t ldw,
                const float* bias, float* y, int64_t out, int64_t c0, int64_t c1) {
  const int64_t lanes = kernel == LinearKernel::kAvx512 ? 16 : 8;
  const int64_t n_groups = (rows + kMaxGroupRows - 1) / kMaxGroupRows;
  const int64_t per_group = (rows + n_groups - 1) / n_groups;
  const int64_t n = c1 - c0;
  thread_local std::vector<float> xt, acc;
  for (int64_t r0 = 0; r0 < rows; r0 += per_group) {
    const int64_t R = std::min(per_group, rows - r0);
    xt.resize(static_cast<size_t>(in * R));
    for (int64_t i = 0; i < in; ++i)
      for (int64_t r = 0; r < R; ++r) xt[i * R + r] = x[(r0 + r) * in + i];
    acc.resize(static_cast<size_t>((n + lanes - 1) / lanes * lanes * R));
    if (kernel == LinearKernel::kAvx512) {
      run_group_avx512(xt.data(), static_cast<int>(R), in, wt + c0, ldw, acc.data(), n);
    } else {
      run_group_avx2(xt.data(), static_cast<int>(R), in, wt + c0, ldw, acc.data(), n);
    }
    for (int64_t v = 0; v * lanes < n; ++v) {
      const int64_t col = v * lanes, width = std::min<int64_t>(lanes, n - col);
      for (int64_t r = 0; r < R; ++r) {
        const float* sum = acc.data() + (v * R + r) * lanes;
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

LinearKernel best_linear_kernel() {
#if PALIGN_SMALL_GEMM
  static const LinearKernel best = cpu_best_kernel();
  return best;
#else
  return LinearKernel::kBlas;
#endif
}

namespace {

// The kernel in use: the CPU's best, or a lesser one PALIGN_LINEAR_KERNEL names (an unknown or unsupported name is
// ignored with a one-line note on stderr).
LinearKernel kernel_from_environment() {
  const LinearKernel best = best_linear_kernel();
  const char* env = std::getenv("PALIGN_LINEAR_KERNEL");
  if (!env || !*env) return best;
  for (const LinearKernel k : {LinearKernel::kBlas, LinearKernel::kAvx2, LinearKernel::kAvx512}) {
    if (linear_kernel_name(k) != env) continue;
    if (k <= best) return k;
    std::fprintf(stderr, "palign: PALIGN_LINEAR_KERNEL=%s: this CPU does not have it, using %s\n", env,
                 std::string(linear_kernel_name(best)).c_str());
    return best;
  }
  std::fprintf(stderr, "palign: PALIGN_LINEAR_KERNEL=%s is not one of blas, avx2, avx512; using %s\n", env,
               std::string(linear_kernel_name(best)).c_str());
  return best;
}

}  // namespace

LinearKernel default_linear_kernel() {
  static const LinearKernel kernel = kernel_from_environment();
  return kernel;
}

void check_linear_kernel(LinearKernel kernel, const char* where) {
  PALIGN_CHECK(kernel <= best_linear_kernel(), ErrorCode::kUnsupported, "[", where, "] this CPU cannot run the ",
               linear_kernel_name(kernel), " kernel; the best it has is ", linear_kernel_name(best_linear_kernel()));
}

std::string_view linear_kernel_name(LinearKernel kernel) {
  switch (kernel) {
    case LinearKernel::kAvx512:
      return "avx512";
    case LinearKernel::kAvx2:
      return "avx2";
    case LinearKernel::kBlas:
      break;
  }
  return "blas";
}

bool small_batch_linear_supports(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel) {
  if (kernel == LinearKernel::kBlas || at::GradMode::is_enabled()) return false;
  if (!x.defined() || !w.defined() || w.dim() != 2 || x.dim() < 1) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || !x.device().is_cpu() || !w.device().is_cpu())
    return false;
  const int64_t out = w.size(0), in = w.size(1);
  if (in < 1 || out < 1 || x.size(-1) != in) return false;
  const int64_t rows = x.numel() / in;
  if (rows < 1 || rows > kSmallBatchMaxRows) return false;
  // Input-major: w = (W^T).t() with W^T's rows contiguous.
  if (w.stride(0) != 1 || w.stride(1) < out) return false;
  return !b.defined() || (b.dim() == 1 && b.size(0) == out && b.scalar_type() == at::kFloat && b.device().is_cpu());
}

at::Tensor small_batch_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel) {
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
    small_gemm(kernel, x_data, rows, in, w_data, ldw, b_data, y_data, out, begin * kBlock, std::min(out, end * kBlock));
  });
#endif
  return y.view(shape);
}

}  // namespace palign::runtime
