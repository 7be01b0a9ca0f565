// Private to runtime: the CPU kernels the forward pass and the adapters call besides the public small-batch linear
// (linear.h; small_gemm.cpp, linear.cpp). Every kernel lives in this folder.
#pragma once

#include <cstdint>
#include <vector>

namespace palign::runtime::kernels {

// y[row] += (x[row] A_row) B_row for one token per row over the stacked per-row A [in, r] and scaling·Bᵀ [r, out];
// rows of rank 0 are skipped. x: [R, in]; a: [R, in, r]; b: [R, r, out]; y: [R, out], changed in place
// (lora_rows.cpp).
void add_row_deltas(const float* x, const float* a, const float* b, const std::vector<int64_t>& rank, int64_t in,
                    int64_t r, int64_t out, float* y);

}  // namespace palign::runtime::kernels
