// Virtual tokens (ForwardOptions::virtual_tokens, GenerateOptions::virtual_tokens): an id V + j reads row j of the
// table. A table whose rows are real tokens' embeddings must reproduce those tokens exactly, cached and uncached, in
// the forward and in generation; ids beyond the table and tables of the wrong shape are errors; gradients reach the
// table.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "palign/runtime/generate.h"
#include "palign/runtime/model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;
using palign::test::error_code_of;

namespace {

at::Tensor ids(std::vector<int64_t> v) { return at::tensor(v, at::kLong); }

class VirtualTokens : public ::testing::TestWithParam<std::string> {};

TEST_P(VirtualTokens, RowsEqualToRealEmbeddingsGiveTheRealTokensOutputs) {
  const auto model = Model::load(test::hf_model(GetParam()));
  const int64_t V = model->config().vocab_size;
  const std::vector<int64_t> real = {1, 17, 42, 99, 5, 63};
  // The table holds the embeddings of real[1] and real[3] (plus an unused row); the virtual ids replace them.
  const at::Tensor table = at::cat({model->token_embeddings({real[3], real[1]}), at::randn({1, model->config().hidden_size})});
  std::vector<int64_t> virt = real;
  virt[1] = V + 1;
  virt[3] = V + 0;
  ForwardOptions fo;
  fo.virtual_tokens = table;
  const at::Tensor want = model->forward_full(at::tensor(real, at::kLong).unsqueeze(0));
  const at::Tensor got = model->forward_full(at::tensor(virt, at::kLong).unsqueeze(0), fo);
  // Cached, in two calls (the prompt, then the rest), as generation runs.
  KvCache cache = model->make_cache(1);
  fo.logits = ForwardOptions::Logits::kAll;
  const at::Tensor a = model->forward({.ids = at::tensor(std::vector<int64_t>(virt.begin(), virt.begin() + 4), at::kLong)
                                                 .unsqueeze(0)},
                                      cache, fo)
                           .logits;
  const at::Tensor b =
      model->forward({.ids = at::tensor(std::vector<int64_t>(virt.begin() + 4, virt.end()), at::kLong).unsqueeze(0)},
                     cache, fo)
          .logits;
  const double diff_full = (got - want).abs().max().item<double>();
  const double diff_cached = (at::cat({a, b}, 1) - want).abs().max().item<double>();
  std::printf("%s: virtual copies of real tokens vs the real tokens: full %.3g, cached %.3g\n", GetParam().c_str(),
              diff_full, diff_cached);
  EXPECT_LT(diff_full, test::kF32Tol);
  EXPECT_LT(diff_cached, test::kF32Tol);

  // Generation from a prompt holding virtual ids gives the real prompt's tokens.
  GenerateOptions g;
  g.max_new_tokens = 8;
  g.sampling.greedy = true;
  const auto plain = generate(*model, nullptr, real, g)[0].ids;
  g.virtual_tokens = &table;
  const auto with_virtual = generate(*model, nullptr, virt, g)[0].ids;
  const auto each = generate_each(*model, nullptr, {virt, real}, g);
  EXPECT_EQ(with_virtual, plain);
  EXPECT_EQ(each[0].ids, plain);
  EXPECT_EQ(each[1].ids, plain);
}

TEST_P(VirtualTokens, BadIdsAndTablesFailAndGradientsReachTheTable) {
  const auto model = Model::load(test::hf_model(GetParam()));
  const int64_t V = model->config().vocab_size, D = model->config().hidden_size;
  ForwardOptions fo;
  // No table: ids >= V are outside the vocabulary.
  EXPECT_EQ(error_code_of([&] { model->forward_full(ids({1, V}).unsqueeze(0)); }),
            ErrorCode::kInvalidArgument);
  fo.virtual_tokens = at::zeros({2, D});
  EXPECT_EQ(error_code_of([&] { model->forward_full(ids({1, V + 2}).unsqueeze(0), fo); }),
            ErrorCode::kInvalidArgument);
  fo.virtual_tokens = at::zeros({2, D + 1});
  EXPECT_EQ(error_code_of([&] { model->forward_full(ids({1, V}).unsqueeze(0), fo); }),
            ErrorCode::kInvalidArgument);
  fo.virtual_tokens = at::zeros({2, D}, at::kDouble);
  EXPECT_EQ(error_code_of([&] { model->forward_full(ids({1, V}).unsqueeze(0), fo); }),
            ErrorCode::kInvalidArgument);
  // Gradients reach the used row only.
  at::Tensor table = (0.1 * at::randn({3, D})).requires_grad_(true);
  fo.virtual_tokens = table;
  model->forward_full(ids({1, V + 1, 7}).unsqueeze(0), fo).sum().backward();
  ASSERT_TRUE(table.grad().defined());
  EXPECT_GT(table.grad()[1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(table.grad()[0].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(table.grad()[2].abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VirtualTokens, ::testing::Values("llama", "qwen2", "gpt2"));

}  // namespace
