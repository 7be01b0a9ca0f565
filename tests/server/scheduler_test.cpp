// The continuous-batching scheduler against its naive twins, runtime::generate one request at a time (and for fusion
// rows decoding::decode over make_lora_fusion): rows that share steps (joining mid-flight, each with its own seed,
// budget, stop strings, steering deltas, adapter or fusion weights, prefilled in chunks) give the tokens each gives
// alone.
#include "palign/server/scheduler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "palign/base/error.h"
#include "palign/decoding/strategies.h"
#include "palign/runtime/generate.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"
#include "test_util.h"

namespace palign::server {
namespace {

using Clock = std::chrono::steady_clock;

const std::filesystem::path kModel = palign::test::data_dir() / ".." / ".." / "models" / "default";

struct Fixture {
  std::unique_ptr<runtime::Model> model = runtime::Model::load(kModel);
  runtime::Tokenizer tokenizer = runtime::Tokenizer::from_dir(kModel);

  std::vector<int64_t> encode(const std::string& text) const {
    const auto ids = tokenizer.encode(text, true);
    return {ids.begin(), ids.end()};
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

RowRequest row(const std::vector<int64_t>& prompt, uint64_t seed, int64_t max_new, bool greedy = false) {
  RowRequest r;
  r.prompt = prompt;
  r.sampling.seed = seed;
  r.sampling.greedy = greedy;
  r.max_new_tokens = max_new;
  return r;
}

runtime::GenerateResult alone(const RowRequest& r) {
  runtime::GenerateOptions o;
  if (!r.fusion_experts.empty()) {
    o.max_new_tokens = r.max_new_tokens;
    o.sampling = r.sampling;
    o.stop_ids = r.stop_ids;
    auto scorer = decoding::make_lora_fusion(*fixture().model, r.fusion_experts, r.fusion_weights, r.prompt);
    return decoding::decode(*scorer, r.prompt, o, fixture().model->config().max_position, &fixture().tokenizer);
  }
  o.max_new_tokens = r.max_new_tokens;
  o.sampling = r.sampling;
  o.stop_ids = r.stop_ids;
  o.stop_strings = r.stop_strings;
  std::map<int64_t, at::Tensor> steering = r.steering;
  o.linear_hook = r.adapter;
  if (!steering.empty())
    o.residual_hook = [steering](int64_t layer, at::Tensor& x) {
      const auto it = steering.find(layer);
      if (it != steering.end()) x = x + it->second;
    };
  return runtime::generate(*fixture().model, &fixture().tokenizer, r.prompt, o).at(0);
}

runtime::GenerateResult wait_done(const std::shared_ptr<RowTicket>& t) {
  auto s = t->wait(SIZE_MAX, Clock::now() + std::chrono::seconds(120));
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.error, "");
  return s.result;
}

TEST(Scheduler, RowsSharingStepsMatchGenerateAlone) {
  auto& f = fixture();
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 4});
  const std::vector<RowRequest> rows = {
      row(f.encode("Why did the"), 1, 20),
      row(f.encode("A computer is"), 2, 7),
      row(f.encode("Love is a"), 3, 30, true),
      row(f.encode("The cat"), 4, 12),
      row(f.encode("Never trust a man who"), 5, 25),  // waits for a free place
      row(f.encode("Q:"), 6, 9),
  };
  std::vector<std::shared_ptr<RowTicket>> tickets;
  for (const auto& r : rows) tickets.push_back(scheduler.submit(r));
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto got = wait_done(tickets[i]), want = alone(rows[i]);
    EXPECT_EQ(got.ids, want.ids) << "row " << i;
    EXPECT_EQ(got.text, want.text) << "row " << i;
    EXPECT_EQ(got.finish_reason, want.finish_reason) << "row " << i;
  }
  const auto s = scheduler.stats();
  std::cout << "steps " << s.steps << ", mean batch " << static_cast<double>(s.step_rows) / s.steps << ", max "
            << s.max_step_rows << "\n";
  EXPECT_EQ(s.max_step_rows, 4);  // the batch was full while 6 rows wanted it
  EXPECT_EQ(s.rows_finished, 6);
}

TEST(Scheduler, RowJoiningMidFlightAndChunkedPrefill) {
  auto& f = fixture();
  // Prompts of 1 to 3 chunks of 4 tokens: prefill passes interleave with the first row's decode steps.
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 3, .prefill_chunk = 4});
  const RowRequest a = row(f.encode("Why did the chicken cross the road? To get to the"), 11, 40, true);
  const RowRequest b =
      row(f.encode("It is a truth universally acknowledged, that a single man in possession"), 12, 20, true);
  auto ta = scheduler.submit(a);
  ASSERT_TRUE(ta);
  (void)ta->wait(0, Clock::now() + std::chrono::seconds(60));  // a has begun decoding
  auto tb = scheduler.submit(b);
  const auto got_a = wait_done(ta), got_b = wait_done(tb);
  EXPECT_EQ(got_a.ids, alone(a).ids);
  EXPECT_EQ(got_b.ids, alone(b).ids);
  EXPECT_GT(scheduler.stats().prefill_passes, 2);
}

TEST(Scheduler, EachRowItsOwnSteering) {
  auto& f = fixture();
  const int64_t D = f.model->config().hidden_size;
  at::manual_seed(3);
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 4});
  std::vector<RowRequest> rows;
  for (int i = 0; i < 4; ++i) {
    RowRequest r = row(f.encode("Why did the"), 21 + i, 16, true);
    if (i > 0) r.steering[i] = at::randn({D}) * 4.0;  // row 0 unsteered, the others each at their own layer
    if (i == 3) r.steering[1] = at::randn({D}) * 4.0;
    rows.push_back(r);
  }
  std::vector<std::shared_ptr<RowTicket>> tickets;
  for (const auto& r : rows) tickets.push_back(scheduler.submit(r));
  std::vector<std::vector<int64_t>> outs;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto got = wait_done(tickets[i]);
    EXPECT_EQ(got.ids, alone(rows[i]).ids) << "row " << i;
    outs.push_back(got.ids);
  }
  EXPECT_NE(outs[0], outs[1]);  // the steering changed the greedy continuation
}

// n adapters of the default model with random (non-zero) B, so each changes the greedy continuation.
std::vector<runtime::LoraAdapter> random_adapters(int n) {
  std::vector<runtime::LoraAdapter> adapters;
  for (int k = 0; k < n; ++k) {
    adapters.push_back(runtime::LoraAdapter::init(
        fixture().model->config(), {.r = 4, .alpha = 8, .target_modules = {"q_proj", "v_proj"}, .base_model = {}},
        3 + k));
    at::NoGradGuard no_grad;
    for (auto& [name, t] : adapters.back().named_parameters())
      if (name.find("lora_B") != std::string::npos) t.copy_(at::randn_like(t) * 0.5);
  }
  return adapters;
}

TEST(Scheduler, EachRowItsOwnAdapter) {
  auto& f = fixture();
  const auto adapters = random_adapters(2);
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 4});
  std::vector<RowRequest> rows;
  for (int i = 0; i < 4; ++i) {
    rows.push_back(row(f.encode("Why did the"), 30 + i, 14, i % 2 == 0));
    rows.back().adapter = i == 0 ? nullptr : &adapters[static_cast<size_t>(i % 2)];
  }
  std::vector<std::shared_ptr<RowTicket>> tickets;
  for (const auto& r : rows) tickets.push_back(scheduler.submit(r));
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(wait_done(tickets[i]).ids, alone(rows[i]).ids) << "row " << i;
  EXPECT_NE(alone(rows[0]).ids, alone(rows[2]).ids);  // greedy with and without an adapter
}

TEST(Scheduler, EachRowItsOwnFusionWeights) {
  auto& f = fixture();
  const auto adapters = random_adapters(2);
  const runtime::LoraAdapter *a = &adapters[0], *b = &adapters[1];
  // Six sequences: the fusion rows take 3 and 2, so the last rows wait for places and join mid-flight.
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 6, .prefill_chunk = 3});
  std::vector<RowRequest> rows;
  const auto fused = [&](const std::string& text, uint64_t seed, int64_t max_new, bool greedy,
                         std::vector<const runtime::LoraAdapter*> experts, std::vector<double> weights) {
    RowRequest r = row(f.encode(text), seed, max_new, greedy);
    r.fusion_experts = std::move(experts);
    r.fusion_weights = std::move(weights);
    rows.push_back(r);
  };
  fused("Why did the", 41, 16, true, {nullptr, a, b}, {0.5, 0.3, 0.2});
  fused("Why did the", 42, 16, true, {a, b}, {1.5, -0.5});  // extrapolating weights
  rows.push_back(row(f.encode("Why did the"), 43, 12, true));
  fused("Once upon a time there was", 44, 20, false, {b, a}, {0.7, 0.3});  // sampled
  fused("Love is a", 45, 10, false, {nullptr, b}, {0.2, 0.8});
  rows.push_back(row(f.encode("The cat"), 46, 9));
  rows.back().adapter = a;
  std::vector<std::shared_ptr<RowTicket>> tickets;
  for (const auto& r : rows) tickets.push_back(scheduler.submit(r));
  std::vector<std::vector<int64_t>> outs;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto got = wait_done(tickets[i]), want = alone(rows[i]);
    EXPECT_EQ(got.ids, want.ids) << "row " << i;
    EXPECT_EQ(got.text, want.text) << "row " << i;
    outs.push_back(got.ids);
  }
  EXPECT_NE(outs[0], outs[1]);  // different weights, different greedy continuations
  EXPECT_NE(outs[0], outs[2]);
  const auto s = scheduler.stats();
  std::cout << "fusion: steps " << s.steps << ", mean sequences per step " << static_cast<double>(s.step_rows) / s.steps
            << ", max " << s.max_step_rows << "\n";
  EXPECT_LE(s.max_step_rows, 6);
  EXPECT_EQ(s.rows_finished, 6);
}

TEST(Scheduler, StopStringsCutAndHeldBack) {
  auto& f = fixture();
  Scheduler scheduler(*f.model, &f.tokenizer);
  RowRequest probe = row(f.encode("Why did the"), 7, 24, true);
  const auto full = alone(probe);
  ASSERT_GE(full.text.size(), 6u);
  const std::string stop = full.text.substr(full.text.size() / 2, 2);
  RowRequest r = probe;
  r.stop_strings = {stop};
  auto t = scheduler.submit(r);
  size_t seen = 0;
  while (true) {
    const auto s = t->wait(seen, Clock::now() + std::chrono::seconds(60));
    EXPECT_EQ(s.text.find(stop), std::string::npos) << "visible text showed the stop string";
    seen = s.text.size();
    if (s.done) {
      EXPECT_EQ(s.result.finish_reason, "stop");
      EXPECT_EQ(s.result.text, full.text.substr(0, full.text.find(stop)));
      EXPECT_EQ(s.result.text, alone(r).text);
      break;
    }
  }
}

TEST(Scheduler, CancelledRowsLeaveOthersFinish) {
  auto& f = fixture();
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 2});
  auto long_row = scheduler.submit(row(f.encode("Once upon a time"), 1, 120));
  auto other = scheduler.submit(row(f.encode("Why did the"), 2, 10, true));
  (void)long_row->wait(0, Clock::now() + std::chrono::seconds(60));
  long_row->cancel();
  const auto s = long_row->wait(SIZE_MAX, Clock::now() + std::chrono::seconds(60));
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.result.finish_reason, "cancelled");
  EXPECT_LT(s.result.ids.size(), 120u);
  EXPECT_EQ(wait_done(other).ids, alone(row(f.encode("Why did the"), 2, 10, true)).ids);
  EXPECT_EQ(scheduler.stats().rows_cancelled, 1);
}

TEST(Scheduler, BadRowsAreRefused) {
  auto& f = fixture();
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 1, .max_queue = 1});
  const auto expect_invalid = [&](RowRequest r, const std::string& needle) {
    try {
      (void)scheduler.submit(std::move(r));
      ADD_FAILURE() << "accepted a bad row (" << needle << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_invalid(row({}, 0, 4), "empty");
  expect_invalid(row(std::vector<int64_t>(f.model->config().max_position, 5), 0, 4), "shorten it");
  expect_invalid(row({1, 99999}, 0, 4), "outside the vocabulary");
  RowRequest bad_steer = row({1, 2}, 0, 4);
  bad_steer.steering[0] = at::zeros({3});
  expect_invalid(bad_steer, "steering delta");
  const auto adapters = random_adapters(1);
  RowRequest fusion = row({1, 2}, 0, 4);
  fusion.fusion_experts = {nullptr, &adapters[0]};
  fusion.fusion_weights = {1.0};
  expect_invalid(fusion, "one weight per expert");
  fusion.fusion_weights = {1.0, std::nan("")};
  expect_invalid(fusion, "not a finite number");
  fusion.fusion_weights = {0.5, 0.5};
  expect_invalid(fusion, "at most 1 together");  // two sequences, max_batch 1
  fusion.adapter = &adapters[0];
  expect_invalid(fusion, "no adapter of its own");
  fusion.adapter = nullptr;
  fusion.steering[0] = at::zeros({f.model->config().hidden_size});
  expect_invalid(fusion, "no steering");
  RowRequest bad_temp = row({1, 2}, 0, 4);
  bad_temp.sampling.temperature = -1;
  expect_invalid(bad_temp, "temperature");
  EXPECT_THROW(Scheduler(*f.model, &f.tokenizer, {.max_batch = 0}), Error);
  // A budget that leaves too few tokens per row is refused at construction, naming the budget.
  EXPECT_THROW(Scheduler(*f.model, &f.tokenizer, {.max_batch = 4, .kv_budget_bytes = 1000}), Error);
  // One place and one queue slot: a third row is refused (null), not queued without bound.
  auto a = scheduler.submit(row(f.encode("Once upon a time"), 1, 100));
  (void)a->wait(0, Clock::now() + std::chrono::seconds(60));
  auto b = scheduler.submit(row(f.encode("Why"), 1, 3));
  auto c = scheduler.submit(row(f.encode("Why"), 1, 3));
  EXPECT_TRUE(b);
  EXPECT_FALSE(c);
  a->cancel();
  EXPECT_TRUE(wait_done(b).ids.size() > 0);
}

TEST(Scheduler, KvBudgetBoundsRowLength) {
  auto& f = fixture();
  const auto& c = f.model->config();
  const int64_t per_token = c.n_layer * 2 * c.n_kv_head * c.head_dim * 4;
  Scheduler scheduler(*f.model, &f.tokenizer, {.max_batch = 2, .kv_budget_bytes = per_token * 2 * 40});
  try {
    (void)scheduler.submit(row(std::vector<int64_t>(50, 5), 0, 4));
    ADD_FAILURE() << "a 50-token prompt fit a 40-token row budget";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("39 prompt tokens"), std::string::npos) << e.what();
  }
  // The budget clips the answer as the context does.
  auto t = scheduler.submit(row(std::vector<int64_t>(30, 5), 0, 100, true));
  EXPECT_EQ(wait_done(t).ids.size(), 10u);
}

TEST(Scheduler, DrainFinishesRowsThenRefuses) {
  auto& f = fixture();
  Scheduler scheduler(*f.model, &f.tokenizer);
  auto t = scheduler.submit(row(f.encode("Why did the"), 1, 20, true));
  scheduler.drain(std::chrono::seconds(60));
  const auto s = t->wait(SIZE_MAX, Clock::now());
  EXPECT_TRUE(s.done);
  EXPECT_NE(s.result.finish_reason, "cancelled");
  EXPECT_FALSE(scheduler.submit(row(f.encode("Why"), 1, 3)));
}

}  // namespace
}  // namespace palign::server
