// Naive-twin tier for the small-batch linear kernel (runtime/linear.h): against at::linear on odd shapes (max-abs),
// the row-count independence it promises (bitwise), the model's forward through it (exact tokens), and the cases it
// declines.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "palign/runtime/generate.h"
#include "palign/runtime/linear.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;

namespace {

// The kernels this CPU runs (AVX2 and/or AVX-512); none elsewhere, where apply_linear keeps the BLAS path and these
// tests have nothing to check.
std::vector<LinearKernel> kernels() {
  std::vector<LinearKernel> out;
  for (const LinearKernel k : {LinearKernel::kAvx2, LinearKernel::kAvx512})
    if (k <= best_linear_kernel()) out.push_back(k);
  return out;
}
bool kernel_available() { return !kernels().empty(); }

// Runs f once per kernel.
template <typename F>
void for_each_kernel(F&& f) {
  for (const LinearKernel k : kernels()) {
    SCOPED_TRACE(std::string(linear_kernel_name(k)));
    f(k);
  }
}

// W [out, in] as Model keeps inference weights: a view of contiguous W^T [in, out] storage.
at::Tensor input_major(int64_t out, int64_t in) { return at::randn({in, out}).t(); }

TEST(SmallBatchLinear, MatchesAtLinearOnOddShapes) {
  if (!kernel_available()) GTEST_SKIP() << "no AVX2 or AVX-512: apply_linear uses the BLAS path";
  c10::InferenceMode guard;
  for_each_kernel([](LinearKernel kernel) {
    at::manual_seed(7);
    double worst = 0;
    // out not a multiple of 8 or 16 (strip tails) or of 128 (narrower strips); in not a multiple of the 16-row chunks.
    for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{1, 5},
                                                                          {7, 3},
                                                                          {16, 16},
                                                                          {37, 29},
                                                                          {100, 37},
                                                                          {129, 64},
                                                                          {256, 256},
                                                                          {300, 201},
                                                                          {704, 256},
                                                                          {4096, 64}}) {
      const at::Tensor w = input_major(out, in);
      const at::Tensor b = at::randn({out});
      for (int64_t rows = 1; rows <= kSmallBatchMaxRows + 3; ++rows) {
        const at::Tensor x = at::randn({rows, in});
        for (const bool with_bias : {false, true}) {
          const at::Tensor bias = with_bias ? b : at::Tensor();
          const at::Tensor expected = at::linear(x, w, bias);
          const at::Tensor y = apply_linear(x, w, bias, kernel);
          if (rows <= kSmallBatchMaxRows) {
            ASSERT_TRUE(small_batch_linear_supports(x, w, bias, kernel)) << out << "x" << in << " rows " << rows;
            ASSERT_TRUE(at::equal(small_batch_linear(x, w, bias, kernel), y));  // apply_linear takes the kernel
          }
          ASSERT_EQ(y.sizes(), expected.sizes());
          // Sums of `in` products of unit normals: relative to sqrt(in).
          const double diff = (y - expected).abs().max().item<double>() / std::sqrt(static_cast<double>(in));
          worst = std::max(worst, diff);
          EXPECT_LE(diff, test::kF32Tol) << out << "x" << in << " rows " << rows << " bias " << with_bias;
        }
      }
    }
    std::printf("small_batch_linear (%s) vs at::linear: max-abs-diff / sqrt(in) = %.3g\n",
                std::string(linear_kernel_name(kernel)).c_str(), worst);
  });
}

// Both kernels sum each output's terms in input order with one FMA per term, so they agree bitwise.
TEST(SmallBatchLinear, KernelsAgreeBitwise) {
  if (kernels().size() < 2) GTEST_SKIP() << "this CPU runs one kernel at most";
  c10::InferenceMode guard;
  at::manual_seed(10);
  int64_t cases = 0;
  for (const auto& [out, in] : std::vector<std::pair<int64_t, int64_t>>{{37, 29}, {300, 201}, {704, 256}, {4096, 256}})
    for (const int64_t rows : {1, 3, 7, 10, 16, 32}) {
      const at::Tensor w = input_major(out, in), b = at::randn({out}), x = at::randn({rows, in});
      const at::Tensor y2 = small_batch_linear(x, w, b, LinearKernel::kAvx2);
      const at::Tensor y16 = small_batch_linear(x, w, b, LinearKernel::kAvx512);
      EXPECT_TRUE(at::equal(y2, y16)) << out << "x" << in << " rows " << rows << ": max-abs-diff "
                                      << (y2 - y16).abs().max().item<double>();
      ++cases;
    }
  std::printf("small_batch_linear: avx2 and avx512 agree bitwise on %ld cases (max-abs-diff 0)\n",
              static_cast<long>(cases));
}

TEST(SmallBatchLinear, KernelChoice) {
  EXPECT_EQ(linear_kernel_name(LinearKernel::kBlas), "blas");
  EXPECT_EQ(linear_kernel_name(LinearKernel::kAvx2), "avx2");
  EXPECT_EQ(linear_kernel_name(LinearKernel::kAvx512), "avx512");
  EXPECT_LE(default_linear_kernel(), best_linear_kernel());
  // BLAS is always there, and declines every case.
  {
    c10::InferenceMode guard;
    EXPECT_FALSE(small_batch_linear_supports(at::zeros({1, 4}), at::zeros({4, 8}).t(), {}, LinearKernel::kBlas));
  }
  // A kernel the CPU lacks is refused.
  if (best_linear_kernel() < LinearKernel::kAvx512) {
    EXPECT_EQ(test::error_code_of([] { check_linear_kernel(LinearKernel::kAvx512, "test"); }), ErrorCode::kUnsupported);
  }
  EXPECT_NO_THROW(check_linear_kernel(LinearKernel::kBlas, "test"));
}

// The kernel travels with the model (ModelOptions, kept by models made from it) and can be set per call
// (ForwardOptions); two models with different kernels in one process give each its own kernel's logits.
TEST(SmallBatchLinear, TheModelAndTheCallCarryTheKernel) {
  const auto dir = test::hf_model("llama");
  ModelOptions blas;
  blas.linear_kernel = LinearKernel::kBlas;
  const auto on_blas = Model::load(dir, blas);
  const auto on_best = Model::load(dir);
  EXPECT_EQ(on_blas->options().linear_kernel, LinearKernel::kBlas);
  EXPECT_EQ(on_best->options().linear_kernel, default_linear_kernel());
  EXPECT_EQ(merge_lora(*on_blas, LoraAdapter::init(on_blas->config(), {}, 1))->options().linear_kernel,
            LinearKernel::kBlas);
  const at::Tensor ids = at::tensor(std::vector<int64_t>{1, 5, 9, 2}, at::kLong).view({1, 4});
  KvCache c1 = on_blas->make_cache(1), c2 = on_best->make_cache(1), c3 = on_best->make_cache(1);
  ForwardOptions fo;
  const at::Tensor a = on_blas->forward({.ids = ids, .n_tokens = {}, .seq = {}}, c1, fo).logits;
  const at::Tensor b = on_best->forward({.ids = ids, .n_tokens = {}, .seq = {}}, c2, fo).logits;
  fo.linear_kernel = LinearKernel::kBlas;  // this call on the BLAS path: the BLAS model's logits, bitwise
  const at::Tensor c = on_best->forward({.ids = ids, .n_tokens = {}, .seq = {}}, c3, fo).logits;
  const double diff = (a - b).abs().max().item<double>();
  std::printf("llama fixture: blas vs %s logits max-abs-diff %.3g; a blas call on the %s model: bitwise\n",
              std::string(linear_kernel_name(default_linear_kernel())).c_str(), diff,
              std::string(linear_kernel_name(default_linear_kernel())).c_str());
  EXPECT_LE(diff, test::kLogitsTol);
  EXPECT_TRUE(at::equal(a, c));
  if (best_linear_kernel() < LinearKernel::kAvx512) {
    ModelOptions lacking;
    lacking.linear_kernel = LinearKernel::kAvx512;
    EXPECT_EQ(test::error_code_of([&] { Model::load(dir, lacking); }), ErrorCode::kUnsupported);
    fo.linear_kernel = LinearKernel::kAvx512;
    KvCache c4 = on_best->make_cache(1);
    EXPECT_EQ(test::error_code_of([&] { on_best->forward({.ids = ids, .n_tokens = {}, .seq = {}}, c4, fo); }),
              ErrorCode::kUnsupported);
  }
}

TEST(SmallBatchLinear, RowsAreBitwiseIndependentOfTheBatch) {
  if (!kernel_available()) GTEST_SKIP() << "no AVX2 or AVX-512: apply_linear uses the BLAS path";
  c10::InferenceMode guard;
  for_each_kernel([](LinearKernel kernel) {
    at::manual_seed(8);
    for (const auto& [out, in] :
         std::vector<std::pair<int64_t, int64_t>>{{37, 29}, {704, 256}, {256, 704}, {4096, 256}}) {
      const at::Tensor w = input_major(out, in);
      const at::Tensor b = at::randn({out});
      const at::Tensor x = at::randn({kSmallBatchMaxRows, in});
      at::Tensor alone = at::empty({kSmallBatchMaxRows, out});
      for (int64_t r = 0; r < kSmallBatchMaxRows; ++r)
        alone[r] = small_batch_linear(x.narrow(0, r, 1), w, b, kernel)[0];
      for (int64_t rows = 1; rows <= kSmallBatchMaxRows; ++rows) {
        const at::Tensor y = small_batch_linear(x.narrow(0, 0, rows), w, b, kernel);
        EXPECT_TRUE(at::equal(y, alone.narrow(0, 0, rows))) << out << "x" << in << " rows " << rows;
      }
      // Any leading shape: [2, 3, in] is six rows.
      const at::Tensor y3 = small_batch_linear(x.narrow(0, 0, 6).view({2, 3, in}), w, b, kernel);
      EXPECT_TRUE(at::equal(y3.view({6, out}), alone.narrow(0, 0, 6)));
    }
    std::printf("small_batch_linear (%s): 1..%ld rows per call give each row's one-row result bitwise\n",
                std::string(linear_kernel_name(kernel)).c_str(), static_cast<long>(kSmallBatchMaxRows));
  });
}

TEST(SmallBatchLinear, DeclinesWhatItDoesNotCover) {
  if (!kernel_available()) GTEST_SKIP() << "no AVX2 or AVX-512: apply_linear uses the BLAS path";
  at::manual_seed(9);
  const at::Tensor w = input_major(32, 16);
  const at::Tensor x = at::randn({3, 16});
  for_each_kernel([&](LinearKernel k) {
    c10::InferenceMode guard;
    EXPECT_TRUE(small_batch_linear_supports(x, w, {}, k));
    EXPECT_FALSE(small_batch_linear_supports(x, w.t().contiguous().t().contiguous(), {}, k));  // output-major
    EXPECT_FALSE(small_batch_linear_supports(x.to(at::kDouble), w.to(at::kDouble), {}, k));
    EXPECT_FALSE(small_batch_linear_supports(at::randn({kSmallBatchMaxRows + 1, 16}), w, {}, k));
    EXPECT_FALSE(small_batch_linear_supports(at::randn({3, 15}), w, {}, k));
  });
  // Grad mode records the graph through at::linear: apply_linear still gives gradients.
  EXPECT_FALSE(small_batch_linear_supports(x, w, {}, best_linear_kernel()));
  const at::Tensor wg = w.detach().requires_grad_(true);
  apply_linear(x, wg, {}, best_linear_kernel()).sum().backward();
  ASSERT_TRUE(wg.grad().defined());
  const double diff = (wg.grad() - x.sum(0).unsqueeze(0).expand({32, 16})).abs().max().item<double>();
  std::printf("grad path: max-abs-diff of dL/dW vs the closed form = %.3g\n", diff);
  EXPECT_LE(diff, test::kF32Tol);
}

// Batched decoding agrees exactly with one-by-one decoding: every linear of a row sees only that row.
TEST(SmallBatchLinear, BatchedGreedyEqualsEachRowAlone) {
  if (!kernel_available()) GTEST_SKIP() << "no AVX2 or AVX-512: apply_linear uses the BLAS path";
  const auto model = Model::load(test::hf_model("llama"));
  const std::vector<std::vector<int64_t>> prompts = {{1, 5, 9, 2}, {3, 3, 7}, {8, 1}};
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.sampling.greedy = true;
  c10::InferenceMode guard;
  for_each_kernel([&](LinearKernel) {
    // One token per row, no cache: attention is the identity, so a row's logits are its linears' alone.
    const at::Tensor ids = at::tensor(std::vector<int64_t>{5, 9, 2}, at::kLong);
    const at::Tensor batched_logits = model->forward_full(ids.view({3, 1}));
    for (int64_t r = 0; r < 3; ++r)
      EXPECT_TRUE(at::equal(batched_logits[r][0], model->forward_full(ids.narrow(0, r, 1))[0])) << "row " << r;
    for (const auto& p : prompts) {
      const auto batched = generate(*model, nullptr, p, o, /*n=*/3);
      const auto alone = generate(*model, nullptr, p, o, /*n=*/1);
      for (const auto& g : batched) EXPECT_EQ(g.ids, alone[0].ids);
    }
  });
}

}  // namespace
