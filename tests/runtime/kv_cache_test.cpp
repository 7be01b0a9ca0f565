// Naive-twin tier for the forward pass: cached incremental decoding, batches of different lengths and forked
// prefixes, each against a full recompute without cache; explicit softmax attention against the fast path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "test_util.h"

using namespace palign;
using namespace palign::runtime;

namespace {

std::vector<int64_t> some_ids(int64_t n, int64_t vocab, int64_t seed) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back((seed * 7919 + i * 104729 + 13) % vocab);
  return out;
}

at::Tensor full_logits(const Model& m, const std::vector<int64_t>& ids) {
  return m.forward_full(at::tensor(ids, at::kLong));
}

class CachePaths : public ::testing::TestWithParam<std::string> {};

TEST_P(CachePaths, IncrementalDecodeEqualsFullRecompute) {
  auto model = Model::load(test::hf_model(GetParam()));
  const auto ids = some_ids(20, 1000, 1);
  at::Tensor full = full_logits(*model, ids);
  KvCache cache = model->make_cache(1, /*initial_capacity=*/4);  // forces growth
  at::Tensor prefill = model->forward(Batch{.ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 7),
                                                              at::kLong).unsqueeze(0)},
                                      cache).logits[0];
  double worst = (prefill - full.narrow(0, 0, 7)).abs().max().item<double>();
  for (size_t t = 7; t < ids.size(); ++t) {
    at::Tensor step = model->forward(Batch{.ids = at::tensor({ids[t]}, at::kLong).unsqueeze(0)}, cache,
                                     {.logits = ForwardOptions::Logits::kLast})
                          .logits[0];
    worst = std::max(worst, (step - full[t]).abs().max().item<double>());
  }
  EXPECT_EQ(cache.length(0), 20);
  EXPECT_LE(worst, test::kF32Tol);
  std::printf("[%s] cached vs full recompute: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
}

TEST_P(CachePaths, RaggedBatchEqualsOneByOne) {
  auto model = Model::load(test::hf_model(GetParam()));
  std::vector<std::vector<int64_t>> seqs = {some_ids(5, 1000, 2), some_ids(11, 1000, 3), some_ids(1, 1000, 4)};
  const int64_t T = 11;
  at::Tensor ids = at::zeros({3, T}, at::kLong);
  std::vector<int64_t> n;
  for (int64_t b = 0; b < 3; ++b) {
    ids[b].narrow(0, 0, seqs[b].size()).copy_(at::tensor(seqs[b], at::kLong));
    n.push_back(static_cast<int64_t>(seqs[b].size()));
  }
  KvCache cache = model->make_cache(3);
  at::Tensor logits = model->forward(Batch{.ids = ids, .n_tokens = n}, cache).logits;
  double worst = 0;
  for (int64_t b = 0; b < 3; ++b) {
    at::Tensor expect = full_logits(*model, seqs[b]);
    worst = std::max(worst, (logits[b].narrow(0, 0, n[b]) - expect).abs().max().item<double>());
    EXPECT_EQ(cache.length(b), n[b]);
  }
  // Then one more token per row, batched, continuing from different lengths.
  at::Tensor next = at::tensor({7, 8, 9}, at::kLong).unsqueeze(1);
  at::Tensor step = model->forward(Batch{.ids = next}, cache, {.logits = ForwardOptions::Logits::kLast}).logits;
  for (int64_t b = 0; b < 3; ++b) {
    auto longer = seqs[b];
    longer.push_back(7 + b);
    worst = std::max(worst, (step[b] - full_logits(*model, longer)[-1]).abs().max().item<double>());
  }
  EXPECT_LE(worst, test::kF32Tol);
  std::printf("[%s] ragged batch vs one-by-one: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
}

TEST_P(CachePaths, ForkedPrefixEqualsRecompute) {
  auto model = Model::load(test::hf_model(GetParam()));
  const auto prefix = some_ids(9, 1000, 5);
  KvCache cache = model->make_cache(4);
  model->forward(Batch{.ids = at::tensor(prefix, at::kLong).unsqueeze(0), .seq = {2}}, cache);
  cache.fork(2, 0);
  cache.fork(2, 1, 5);  // a shorter fork: the first 5 positions
  cache.fork(2, 3);
  // Rows: seq 0 continues with 2 tokens, seq 3 with 2 other tokens, seq 1 (len 5) with 2 tokens.
  at::Tensor ids = at::tensor({11, 12, 21, 22, 31, 32}, at::kLong).view({3, 2});
  at::Tensor out = model->forward(Batch{.ids = ids, .seq = {0, 3, 1}}, cache).logits;
  double worst = 0;
  std::vector<std::vector<int64_t>> expect_seqs = {prefix, prefix,
                                                   std::vector<int64_t>(prefix.begin(), prefix.begin() + 5)};
  for (int64_t r = 0; r < 3; ++r) {
    auto s = expect_seqs[r];
    s.push_back(ids[r][0].item<int64_t>());
    s.push_back(ids[r][1].item<int64_t>());
    at::Tensor expect = full_logits(*model, s).narrow(0, s.size() - 2, 2);
    worst = std::max(worst, (out[r] - expect).abs().max().item<double>());
  }
  EXPECT_EQ(cache.length(1), 7);
  EXPECT_EQ(cache.length(2), 9);
  EXPECT_LE(worst, test::kF32Tol);
  std::printf("[%s] forked prefix vs recompute: max-abs-diff = %.3g\n", GetParam().c_str(), worst);

  // truncate + keep: rewinding seq 0 to the prefix and re-appending gives the same logits again.
  cache.truncate(0, 9);
  at::Tensor again = model->forward(Batch{.ids = ids.narrow(0, 0, 1), .seq = {0}}, cache).logits[0];
  EXPECT_LE((again - out[0]).abs().max().item<double>(), test::kF32Tol);
  cache.keep(0);
  EXPECT_EQ(cache.length(1), 0);
  EXPECT_EQ(cache.length(0), 11);
}

TEST_P(CachePaths, ForkAllEqualsFork) {
  auto model = Model::load(test::hf_model(GetParam()));
  KvCache a = model->make_cache(3), b = model->make_cache(3);
  at::Tensor prefix = at::tensor(some_ids(6, 1000, 9), at::kLong).unsqueeze(0);
  model->forward(Batch{.ids = prefix, .seq = {1}}, a);
  model->forward(Batch{.ids = prefix, .seq = {1}}, b);
  a.fork_all(1);
  b.fork(1, 0);
  b.fork(1, 2);
  for (int64_t layer = 0; layer < a.n_layer(); ++layer) {
    EXPECT_TRUE(a.k(layer).narrow(2, 0, 6).equal(b.k(layer).narrow(2, 0, 6)));
    EXPECT_TRUE(a.v(layer).narrow(2, 0, 6).equal(b.v(layer).narrow(2, 0, 6)));
  }
}

// ARGS' step: rows share a prefix and each appends one candidate; fork_all(src, n, from) then copies only src's new
// position into the others. Against forking the whole prefix, and the continued rows against a recompute.
TEST_P(CachePaths, ForkAllFromCopiesOnlyTheNewPositions) {
  auto model = Model::load(test::hf_model(GetParam()));
  const auto prefix = some_ids(7, 1000, 4);
  const std::vector<int64_t> candidates = {40, 41, 42}, next = {50, 51, 52};
  KvCache a = model->make_cache(3), b = model->make_cache(3);
  for (KvCache* cache : {&a, &b}) {
    model->forward(Batch{.ids = at::tensor(prefix, at::kLong).unsqueeze(0), .seq = {0}}, *cache);
    cache->fork_all(/*src=*/0);
    model->forward(Batch{.ids = at::tensor(candidates, at::kLong).unsqueeze(1)}, *cache);
  }
  a.fork_all(/*src=*/1, /*n=*/8, /*from=*/7);
  b.fork_all(/*src=*/1);
  for (int64_t seq = 0; seq < 3; ++seq) EXPECT_EQ(a.length(seq), 8);
  for (int64_t layer = 0; layer < a.n_layer(); ++layer) {
    EXPECT_TRUE(a.k(layer).narrow(2, 0, 8).equal(b.k(layer).narrow(2, 0, 8)));
    EXPECT_TRUE(a.v(layer).narrow(2, 0, 8).equal(b.v(layer).narrow(2, 0, 8)));
  }
  at::Tensor out = model
                       ->forward(Batch{.ids = at::tensor(next, at::kLong).unsqueeze(1)}, a,
                                 {.logits = ForwardOptions::Logits::kLast})
                       .logits;
  double worst = 0;
  for (int64_t r = 0; r < 3; ++r) {
    auto s = prefix;
    s.push_back(candidates[1]);
    s.push_back(next[r]);
    worst = std::max(worst, (out[r] - full_logits(*model, s)[s.size() - 1]).abs().max().item<double>());
  }
  std::printf("[%s] fork_all from the new position vs recompute: max-abs-diff = %.3g\n", GetParam().c_str(), worst);
  EXPECT_LE(worst, test::kF32Tol);

  // from beyond n, or a sequence shorter than from: errors, and the lengths stay.
  EXPECT_EQ(test::error_code_of([&] { a.fork_all(0, 5, 6); }), ErrorCode::kInvalidArgument);
  a.truncate(2, 3);
  EXPECT_EQ(test::error_code_of([&] { a.fork_all(0, 9, 5); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(a.length(0), 9);
  EXPECT_EQ(a.length(2), 3);
}

INSTANTIATE_TEST_SUITE_P(Hf, CachePaths, ::testing::Values("llama", "qwen2", "qwen3", "mistral", "gpt2"));

// The fast attention (grouped matmul over the cache with a boolean mask) against explicit per-head
// softmax(QK^T / sqrt(d)) V with repeated KV heads, on the first layer's traced q/k/v.
TEST(Attention, GroupedMatchesExplicitSoftmax) {
  auto model = Model::load(test::hf_model("llama"));
  const auto& c = model->config();
  at::Tensor q, k, v, out;
  ForwardOptions opts;
  opts.trace = [&](int64_t layer, std::string_view name, const at::Tensor& t) {
    if (layer != 0) return;
    if (name == "q") q = t.clone();
    if (name == "k") k = t.clone();
    if (name == "v") v = t.clone();
  };
  at::Tensor pre_o;
  struct Capture : LinearHook {
    at::Tensor* sink;
    void apply(int64_t layer, LinearKind kind, const at::Tensor& x, at::Tensor&) const override {
      if (layer == 0 && kind == LinearKind::kO) *sink = x.clone();
    }
  } capture;
  capture.sink = &pre_o;
  opts.linear_hook = &capture;
  model->forward_full(at::tensor(some_ids(12, 1000, 11), at::kLong), opts);
  ASSERT_TRUE(q.defined() && k.defined() && v.defined() && pre_o.defined());
  const int64_t T = q.size(2), G = c.n_head / c.n_kv_head;
  at::Tensor kr = k.repeat_interleave(G, 1), vr = v.repeat_interleave(G, 1);
  at::Tensor scores = at::matmul(q, kr.transpose(-1, -2)) / std::sqrt(static_cast<double>(c.head_dim));
  at::Tensor causal = at::ones({T, T}, at::kBool).triu(1);
  at::Tensor probs = at::softmax(scores.masked_fill(causal, -INFINITY), -1);
  at::Tensor naive = at::matmul(probs, vr).transpose(1, 2).reshape({1, T, c.n_head * c.head_dim});
  const double diff = (naive - pre_o).abs().max().item<double>();
  std::printf("grouped attention vs explicit softmax: max-abs-diff = %.3g\n", diff);
  EXPECT_LE(diff, test::kF32Tol);
}

TEST(ForwardErrors, BadInputsAreClearErrorsAndLeaveTheCacheAlone) {
  auto model = Model::load(test::hf_model("llama"));
  KvCache cache = model->make_cache(2);
  auto expect_code = [&](const Batch& b, ErrorCode code, const char* needle) {
    try {
      model->forward(b, cache);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_code(Batch{.ids = at::tensor({1, 5000}, at::kLong).unsqueeze(0)}, ErrorCode::kInvalidArgument,
              "outside the vocabulary");
  expect_code(Batch{.ids = at::tensor({-1}, at::kLong).unsqueeze(0)}, ErrorCode::kInvalidArgument,
              "outside the vocabulary");
  expect_code(Batch{.ids = at::zeros({1, 0}, at::kLong)}, ErrorCode::kInvalidArgument, "empty input");
  expect_code(Batch{.ids = at::zeros({1, 2}, at::kLong), .seq = {5}}, ErrorCode::kInvalidArgument, "out of range");
  expect_code(Batch{.ids = at::zeros({2, 2}, at::kLong), .seq = {1, 1}}, ErrorCode::kInvalidArgument, "twice");
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_EQ(cache.length(1), 0);

  auto gpt2 = Model::load(test::hf_model("gpt2"));  // n_positions = 256
  KvCache small = gpt2->make_cache(1);
  try {
    gpt2->forward(Batch{.ids = at::zeros({1, 257}, at::kLong)}, small);
    ADD_FAILURE() << "no error for a context beyond n_positions";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the model's maximum of 256"), std::string::npos) << e.what();
  }
}

}  // namespace
