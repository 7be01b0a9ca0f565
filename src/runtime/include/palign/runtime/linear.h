// The inference linears of the forward pass: y = x W^T + b sized for the BLAS, and the small-batch kernel that
// multiplies a few rows without it. Public so that code computing a model's outputs itself (a decoding strategy
// applying the LM head to a hidden state it kept) gets the forward's exact values, and for tests and benchmarks.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

namespace palign::runtime {

// Most rows small_batch_linear takes (groups of up to 16 rows, each reading the weights once): measured faster than
// the BLAS path up to here (see the table above apply_linear in kernels/linear.cpp), where that path switches from
// column blocks to one gemm.
constexpr int64_t kSmallBatchMaxRows = 32;

// The instruction set small_batch_linear runs with; kBlas: none, apply_linear keeps its BLAS path. A model carries
// its kernel (ModelOptions, runtime/model.h), a forward may override it (ForwardOptions); nothing process-wide.
enum class LinearKernel { kBlas, kAvx2, kAvx512 };

// y = x W^T + b, as Model::forward applies its linears (at::linear's value up to float rounding; b may be
// undefined). x: [..., in]; w: [out, in]; b: [out]; returns [..., out], float32 when x is. Without grad mode, a few
// float32 rows against an input-major weight go through small_batch_linear with kernel (unless kBlas), other shapes
// through BLAS calls sized for it; with grad mode the graph is recorded as at::linear does.
at::Tensor apply_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel);

// "blas", "avx2" or "avx512".
std::string_view linear_kernel_name(LinearKernel kernel);

// The best this CPU runs: kAvx512 on x86-64-v4 CPUs (AVX-512 F/VL/BW/DQ/CD), kAvx2 on x86-64-v3 (AVX2, FMA), else
// kBlas.
LinearKernel best_linear_kernel();

// The default of ModelOptions: best_linear_kernel(), or a lesser one named by the environment variable
// PALIGN_LINEAR_KERNEL (blas, avx2 or avx512; read once; an unknown or unavailable name is noted on stderr and
// ignored). The variable is the command line's way to choose; code passes a kernel.
LinearKernel default_linear_kernel();

// Throws kUnsupported when this CPU cannot run kernel; where: the caller, for the message.
void check_linear_kernel(LinearKernel kernel, const char* where);

// True when small_batch_linear applies: kernel is not kBlas, grad mode off, CPU float32 x [..., in] of
// 1..kSmallBatchMaxRows rows, w [out, in] input-major (w.stride(0) == 1: W^T's rows contiguous, as Model keeps
// inference weights), b undefined or float32 [out].
bool small_batch_linear_supports(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel);

// y = x W^T + b reading each weight once for all rows, with kernel; requires small_batch_linear_supports (and a
// kernel the CPU runs: check_linear_kernel). Each output element is
// (x[r, 0] W[j, 0] + x[r, 1] W[j, 1] + ...) + b[j], one fused multiply-add per term in input order, so a row's result
// is bitwise the same whatever the other rows in the call and however the columns are split across threads: a batch
// of rows gives what the rows give one by one. Not bitwise at::linear (the BLAS sums in another order).
at::Tensor small_batch_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, LinearKernel kernel);

}  // namespace palign::runtime
