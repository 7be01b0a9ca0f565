// Continuous batching: one thread runs the decode steps of every active row together, in one batched forward per step.
// New rows join between steps (their prompts prefilled together, in chunks of at most prefill_chunk tokens, so a long
// prompt's attention scores are [H, chunk, T] per pass rather than [H, T, T], and decoding rows keep stepping while it
// fills); finished and cancelled rows leave at once and their KV-cache sequence is reused. Each row carries its own
// personalization: its own steering deltas (added to its rows of the residual stream), its own LoRA adapter (the
// runtime's per-row LoraBatchHook), its own fusion weights over LoRA experts, its own sampler and seed, token budget
// and stop conditions. No KV cache is shared between rows. Row i of a request with n outputs is one more row with its
// own seed.
//
// A fusion row (MOD / GenARM over K LoRA experts of the model) is K KV-cache sequences of the batch, one per expert,
// fed the same tokens: each step it samples from Σ_k w_k · log_softmax(logits_k) of its K sequences, so rows with
// different experts and weights decode in the same passes as plain rows.
//
// A row decodes the tokens runtime::generate gives for its prompt, options and seed, and a fusion row those of
// decoding::decode over make_lora_fusion (tested as the scheduler's naive twins), whichever rows it shares steps with.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "palign/runtime/generate.h"
#include "palign/runtime/sampler.h"

namespace palign::runtime {
class LoraAdapter;
class Model;
class Tokenizer;
}  // namespace palign::runtime

namespace palign::server {

// One sequence to decode.
struct RowRequest {
  std::vector<int64_t> prompt;
  runtime::SamplingOptions sampling;
  int64_t max_new_tokens = 256;           // clipped to the model's context
  std::vector<int64_t> stop_ids;          // kept in the output, as runtime::generate does
  std::vector<std::string> stop_strings;  // the text is cut before the first one
  // layer -> [D] float32 added to this row's residual stream after that layer (steering deltas); empty: none.
  std::map<int64_t, at::Tensor> steering;
  const runtime::LoraAdapter* adapter = nullptr;  // borrowed, outlives the row; null: the base model
  // Fusion: K experts (borrowed; null: the base model) and K weights (any real numbers). Empty: a plain row. A fusion
  // row takes K of the max_batch sequences and takes no `adapter` and no `steering`.
  std::vector<const runtime::LoraAdapter*> fusion_experts;
  std::vector<double> fusion_weights;
};

// A row's progress, shared by the scheduler (which writes it) and the request's thread (which reads it).
class RowTicket {
 public:
  struct Snapshot {
    std::string text;  // the text safe to show so far (stop strings cut; a possible stop prefix held back)
    bool done = false;
    runtime::GenerateResult result;  // when done
    std::string error;               // when done with an error (the row's forward failed)
    int64_t first_token_ns = -1;     // ns from submission to the first token, -1 before it
  };
  // Waits until the visible text is longer than `seen` characters, the row is done, or the deadline passes.
  Snapshot wait(size_t seen, std::chrono::steady_clock::time_point deadline);
  // The row leaves the batch at the next step (a disconnected client, a timeout); its ticket is then done with
  // finish_reason "cancelled".
  void cancel();

 private:
  friend class Scheduler;
  void publish(const std::string& visible);
  void finish(runtime::GenerateResult result, std::string error);
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string visible_;
  bool done_ = false, cancelled_ = false;
  runtime::GenerateResult result_;
  std::string error_;
  std::chrono::steady_clock::time_point submitted_ = std::chrono::steady_clock::now();
  int64_t first_token_ns_ = -1;
};

struct SchedulerOptions {
  int64_t max_batch = 16;       // KV-cache sequences decoded together (a plain row is one, a fusion row K)
  int64_t max_queue = 256;      // rows waiting for a place; submit refuses more
  int64_t prefill_chunk = 256;  // prompt tokens of a row per prefill pass
  // Memory budget of the KV cache in bytes (0: none): a row whose prompt and budget would need more than its share,
  // budget / max_batch, is refused at submit with a message naming the most tokens a row may hold.
  int64_t kv_budget_bytes = 0;
  std::string validate() const;
};

struct SchedulerStats {
  int64_t queued = 0, active = 0;
  int64_t steps = 0;           // decode passes
  int64_t prefill_passes = 0;  // prefill passes (a chunk of each prefilling row)
  int64_t tokens = 0;          // tokens sampled
  int64_t prefill_tokens = 0;  // prompt tokens forwarded
  int64_t rows_finished = 0, rows_cancelled = 0, rows_failed = 0;
  int64_t step_rows = 0;  // sequences summed over decode passes (step_rows / steps: the mean batch)
  int64_t max_step_rows = 0;
};

class Scheduler {
 public:
  // Borrows model and tokenizer (null: no text, no stop strings). Starts the thread. Throws kInvalidArgument for bad
  // options or a model that is not a causal LM.
  Scheduler(const runtime::Model& model, const runtime::Tokenizer* tokenizer, SchedulerOptions options = {});
  // Cancels every row and joins the thread.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a row. Returns null when the queue is full (the caller answers "busy") or the scheduler is draining.
  // Throws kInvalidArgument for an empty prompt, a prompt beyond the model's context or the KV budget, bad sampling
  // options, stop strings without a tokenizer, steering deltas of another width than the model's, or fusion with
  // weights of another count than its experts, non-finite weights, more experts than max_batch, or an adapter or
  // steering too.
  std::shared_ptr<RowTicket> submit(RowRequest row);
  // Stops taking rows, waits up to `timeout` for the queued and active ones to finish, then cancels what is left.
  void drain(std::chrono::milliseconds timeout);
  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Row;
  struct Cache;
  void loop();
  void admit();
  void prefill();
  void sample_ready();
  void decode();
  void retire(size_t index, const std::string& reason, const std::string& error = "");
  // One pass over rows (ids [B, T], n_tokens per row; empty: T each), every sequence of each row; returns each row's
  // next-token scores [B, V] (a fusion row's fused log-probabilities).
  at::Tensor forward_rows(const std::vector<size_t>& rows, const at::Tensor& ids, const std::vector<int64_t>& n_tokens);

  const runtime::Model& model_;
  const runtime::Tokenizer* tokenizer_;
  SchedulerOptions options_;
  int64_t max_row_tokens_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Row>> queue_;
  bool stopping_ = false, draining_ = false;
  SchedulerStats stats_;
  // Owned by the thread.
  std::vector<std::unique_ptr<Row>> active_;
  std::vector<int64_t> free_slots_;
  std::unique_ptr<Cache> cache_;
  std::thread thread_;
};

}  // namespace palign::server
