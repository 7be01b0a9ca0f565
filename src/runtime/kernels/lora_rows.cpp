// The per-row LoRA delta of a decode step (kernels.h): plain loops over GCC vector types, cloned for AVX2.
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

namespace palign::runtime::kernels {

namespace {

// Eight floats, loaded and stored at any float address (GCC's vector types alias their element type).
typedef float Vec8 __attribute__((vector_size(32), aligned(4)));

// y += (x A) B for one row: A [in][r] (its first K columns used), B [r][out] (first K rows), K a multiple of 8 not
// below the rank (columns past the rank are zeros). Each output sums its K terms in order, then adds to y, as the
// bmm path does; row_delta_any gives the same values for any K.
template <int K>
[[gnu::always_inline]] inline void row_delta(const float* x, const float* a, const float* b, int64_t in, int64_t r,
                                             int64_t out, float* y) {
  constexpr int kV = K / 8;
  Vec8 zv[kV] = {};
  for (int64_t i = 0; i < in; ++i)
    for (int v = 0; v < kV; ++v) zv[v] += x[i] * *reinterpret_cast<const Vec8*>(a + i * r + 8 * v);
  float z[K];
  std::memcpy(z, zv, sizeof(z));
  int64_t c = 0;
  for (; c + 8 <= out; c += 8) {
    Vec8 t = {};
    for (int j = 0; j < K; ++j) t += z[j] * *reinterpret_cast<const Vec8*>(b + j * out + c);
    *reinterpret_cast<Vec8*>(y + c) += t;
  }
  for (; c < out; ++c) {
    float t = 0.0f;
    for (int j = 0; j < K; ++j) t += z[j] * b[j * out + c];
    y[c] += t;
  }
}

void row_delta_any(const float* x, const float* a, const float* b, int64_t in, int64_t r, int64_t k, int64_t out,
                   float* y) {
  thread_local std::vector<float> z;
  z.assign(static_cast<size_t>(k), 0.0f);
  for (int64_t i = 0; i < in; ++i)
    for (int64_t j = 0; j < k; ++j) z[j] += x[i] * a[i * r + j];
  for (int64_t c = 0; c < out; ++c) {
    float t = 0.0f;
    for (int64_t j = 0; j < k; ++j) t += z[j] * b[j * out + c];
    y[c] += t;
  }
}

}  // namespace

// Not under ThreadSanitizer: it instruments the clones' ifunc resolver, which the loader runs before the sanitizer's
// runtime is up, so the program crashed at load (GCC 12). That build takes the default version.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic ignored "-Wpsabi"  // Vec8 stays inside one function
#define PALIGN_LORA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PALIGN_LORA_CLONES
#endif

// One token per row: y[row] += (x[row] A_row) B_row over the stacked per-row A [in, r] and scaling·Bᵀ [r, out], in
// plain loops (a decode step's LoRA is a few thousand multiply-adds per linear, less than the dispatch of the ATen
// ops it replaces). Each row reads only its own data; rows of rank 0 are skipped. Cloned for AVX2 (no FMA: both
// clones round alike). x: [R, in]; a: [R, in, r]; b: [R, r, out]; y: [R, out], changed in place.
PALIGN_LORA_CLONES
void add_row_deltas(const float* x, const float* a, const float* b, const std::vector<int64_t>& rank, int64_t in,
                    int64_t r, int64_t out, float* y) {
  for (size_t row = 0; row < rank.size(); ++row) {
    if (rank[row] == 0) continue;
    const auto n = static_cast<int64_t>(row);
    const float *x_n = x + n * in, *a_n = a + n * in * r, *b_n = b + n * r * out;
    float* y_n = y + n * out;
    switch (r) {  // the padded rank, a compile-time trip count for the usual ones
      case 8:
        row_delta<8>(x_n, a_n, b_n, in, r, out, y_n);
        break;
      case 16:
        row_delta<16>(x_n, a_n, b_n, in, r, out, y_n);
        break;
      default:
        row_delta_any(x_n, a_n, b_n, in, r, rank[row], out, y_n);
        break;
    }
  }
}

}  // namespace palign::runtime::kernels
