// The continuous-batching loop. Each iteration: admit queued rows into free KV-cache sequences; one prefill pass over
// the rows still filling (a chunk of each, right-padded); sample the rows whose logits are ready; one decode pass over
// the rows that sampled a token and go on. Shapes: B rows of a pass, T tokens per row, D the model's width.
#include "palign/server/scheduler.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "palign/base/error.h"
#include "palign/runtime/config.h"
#include "palign/runtime/kv_cache.h"
#include "palign/runtime/lora.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::server {

namespace {

using Clock = std::chrono::steady_clock;

size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t cut = std::string::npos;
  for (const auto& s : stops)
    if (!s.empty()) cut = std::min(cut, text.find(s));
  return cut;
}

// The length of text's prefix that is safe to show: a suffix that may begin a stop string is held back, and so is an
// incomplete UTF-8 sequence or a replacement character (a token that ends mid-character).
size_t visible_length(const std::string& text, const std::vector<std::string>& stops) {
  size_t n = text.size();
  for (const auto& s : stops)
    for (size_t k = s.empty() ? 0 : std::min(s.size() - 1, text.size()); k > 0; --k)
      if (text.compare(text.size() - k, k, s, 0, k) == 0) {
        n = std::min(n, text.size() - k);
        break;
      }
  if (n >= 3 && text.compare(n - 3, 3, "\xEF\xBF\xBD") == 0) n -= 3;
  // Back off over continuation bytes to the lead byte of the last sequence; drop it when the sequence is incomplete.
  size_t lead = n;
  while (lead > 0 && n - lead < 3 && (static_cast<unsigned char>(text[lead - 1]) & 0xC0) == 0x80) --lead;
  if (lead > 0) {
    const auto c = static_cast<unsigned char>(text[lead - 1]);
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > 1 && n - (lead - 1) < need) n = lead - 1;
  }
  return n;
}

}  // namespace

// ---- RowTicket ----

RowTicket::Snapshot RowTicket::wait(size_t seen, Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return done_ || visible_.size() > seen; });
  Snapshot s;
  s.text = visible_;
  s.done = done_;
  if (done_) s.result = result_, s.error = error_;
  s.first_token_ns = first_token_ns_;
  return s;
}

void RowTicket::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

void RowTicket::publish(const std::string& visible) {
  {
    std::lock_guard lock(mutex_);
    if (first_token_ns_ < 0)
      first_token_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - submitted_).count();
    if (visible.size() <= visible_.size()) return;
    visible_ = visible;
  }
  cv_.notify_all();
}

void RowTicket::finish(runtime::GenerateResult result, std::string error) {
  {
    std::lock_guard lock(mutex_);
    if (first_token_ns_ < 0)
      first_token_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - submitted_).count();
    visible_ = result.text;
    result_ = std::move(result);
    error_ = std::move(error);
    done_ = true;
  }
  cv_.notify_all();
}

// ---- Scheduler ----

struct Scheduler::Row {
  RowRequest request;
  std::shared_ptr<RowTicket> ticket;
  std::vector<int64_t> slots;  // its KV-cache sequences: one, or a fusion row's K (expert k on slots[k])
  at::Tensor fusion_weights;   // a fusion row's weights [1, K] float32
  int64_t budget = 0;
  int64_t prefilled = 0;  // prompt tokens in the cache
  std::optional<runtime::Sampler> sampler;
  std::vector<int64_t> history;  // prompt + generated (for the repetition penalty)
  runtime::GenerateResult result;
  at::Tensor logits;     // [V], ready to sample
  int64_t pending = -1;  // a sampled token still to be forwarded
  bool finished = false;
};

struct Scheduler::Cache {
  runtime::KvCache kv;
  // The per-row adapter hook of the last pass, rebuilt when the rows' adapters change.
  std::vector<const runtime::LoraAdapter*> hook_rows;
  std::unique_ptr<runtime::LoraBatchHook> hook;
};

std::string SchedulerOptions::validate() const {
  if (max_batch < 1) return "max_batch must be at least 1";
  if (max_queue < 0) return "max_queue must not be negative";
  if (prefill_chunk < 1) return "prefill_chunk must be at least 1";
  if (kv_budget_bytes < 0) return "kv_budget_bytes must not be negative";
  return "";
}

Scheduler::Scheduler(const runtime::Model& model, const runtime::Tokenizer* tokenizer, SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
  const std::string err = options_.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[server.scheduler] ", err);
  const auto& c = model_.config();
  PALIGN_CHECK(c.head == runtime::HeadKind::kCausalLm, ErrorCode::kInvalidArgument, "[server.scheduler] ",
               c.architecture, " is not a causal language model");
  max_row_tokens_ = c.max_position;
  if (options_.kv_budget_bytes > 0) {
    const int64_t per_token = c.n_layer * 2 * c.n_kv_head * c.head_dim * 4;
    max_row_tokens_ = std::min(max_row_tokens_, options_.kv_budget_bytes / options_.max_batch / per_token);
    PALIGN_CHECK(max_row_tokens_ >= 2, ErrorCode::kInvalidArgument, "[server.scheduler] a KV budget of ",
                 options_.kv_budget_bytes, " bytes leaves ", max_row_tokens_, " tokens per row for ",
                 options_.max_batch, " rows; raise the budget or lower the batch");
  }
  cache_ = std::make_unique<Cache>(Cache{model_.make_cache(options_.max_batch, 16), {}, nullptr});
  for (int64_t s = options_.max_batch - 1; s >= 0; --s) free_slots_.push_back(s);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<RowTicket> Scheduler::submit(RowRequest row) {
  const auto P = std::ssize(row.prompt);
  PALIGN_CHECK(P > 0, ErrorCode::kInvalidArgument, "[server.scheduler] the prompt is empty; give some text");
  PALIGN_CHECK(P < max_row_tokens_, ErrorCode::kInvalidArgument, "[server.scheduler] the prompt has ", P,
               " tokens; this server holds at most ", max_row_tokens_ - 1,
               " prompt tokens per row (the model's context or the KV-cache budget); shorten it");
  const std::string err = row.sampling.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[server.scheduler] ", err);
  PALIGN_CHECK(row.max_new_tokens >= 1, ErrorCode::kInvalidArgument,
               "[server.scheduler] max_new_tokens must be at least 1, got ", row.max_new_tokens);
  PALIGN_CHECK(row.stop_strings.empty() || tokenizer_, ErrorCode::kInvalidArgument,
               "[server.scheduler] stop strings need a tokenizer");
  const int64_t vocab = model_.config().vocab_size;
  for (int64_t id : row.prompt)
    PALIGN_CHECK(id >= 0 && id < vocab, ErrorCode::kInvalidArgument, "[server.scheduler] token id ", id,
                 " is outside the vocabulary of ", vocab);
  for (const auto& [layer, delta] : row.steering)
    PALIGN_CHECK(layer >= 0 && layer < model_.config().n_layer && delta.dim() == 1 &&
                     delta.size(0) == model_.config().hidden_size,
                 ErrorCode::kInvalidArgument, "[server.scheduler] a steering delta must be [",
                 model_.config().hidden_size, "] at a layer below ", model_.config().n_layer);
  const auto K = std::ssize(row.fusion_experts);
  PALIGN_CHECK(std::ssize(row.fusion_weights) == K, ErrorCode::kInvalidArgument, "[server.scheduler] fusion has ",
               row.fusion_weights.size(), " weights for ", K, " experts; give one weight per expert");
  for (double w : row.fusion_weights)
    PALIGN_CHECK(std::isfinite(w), ErrorCode::kInvalidArgument, "[server.scheduler] fusion weight ", w,
                 " is not a finite number");
  PALIGN_CHECK(K == 0 || !row.adapter, ErrorCode::kInvalidArgument,
               "[server.scheduler] a fusion row takes no adapter of its own; make the adapter one of its experts");
  PALIGN_CHECK(K == 0 || row.steering.empty(), ErrorCode::kInvalidArgument,
               "[server.scheduler] a fusion row takes no steering deltas; steer a plain row");
  PALIGN_CHECK(K <= options_.max_batch, ErrorCode::kInvalidArgument, "[server.scheduler] fusion over ", K,
               " experts needs ", K, " sequences; this scheduler decodes at most ", options_.max_batch,
               " together (max_batch); fuse fewer experts");
  auto r = std::make_unique<Row>();
  if (K > 0)
    r->fusion_weights =
        at::tensor(std::vector<float>(row.fusion_weights.begin(), row.fusion_weights.end()), at::kFloat).unsqueeze(0);
  r->budget = std::min(row.max_new_tokens, max_row_tokens_ - P);
  r->request = std::move(row);
  r->ticket = std::make_shared<RowTicket>();
  auto ticket = r->ticket;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || draining_ || std::ssize(queue_) >= options_.max_queue) return nullptr;
    queue_.push_back(std::move(r));
    stats_.queued = std::ssize(queue_);
  }
  cv_.notify_all();
  return ticket;
}

void Scheduler::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  draining_ = true;
  cv_.notify_all();
  cv_.wait_for(lock, timeout, [&] { return queue_.empty() && stats_.active == 0; });
  stopping_ = true;
  lock.unlock();
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::loop() {
  at::NoGradGuard no_grad;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) break;
    }
    admit();
    // Rows whose client went away leave before the next pass.
    for (size_t i = 0; i < active_.size(); ++i) {
      bool cancelled;
      {
        std::lock_guard lock(active_[i]->ticket->mutex_);
        cancelled = active_[i]->ticket->cancelled_;
      }
      if (cancelled) retire(i, "cancelled");
    }
    try {
      prefill();
      sample_ready();
      decode();
    } catch (const std::exception& e) {
      // A failed pass fails its rows (every active row: the cache's state is unknown), never the server.
      for (size_t i = 0; i < active_.size(); ++i) retire(i, "error", e.what());
    }
    std::erase_if(active_, [](const auto& r) { return r->finished; });
    {
      std::lock_guard lock(mutex_);
      stats_.active = std::ssize(active_);
    }
    cv_.notify_all();  // drain() waits on the counts
  }
  // Stopped: whatever is left is cancelled.
  std::deque<std::unique_ptr<Row>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(queue_);
    stats_.queued = 0;
  }
  for (size_t i = 0; i < active_.size(); ++i) retire(i, "cancelled");
  for (auto& r : left) {
    r->result.finish_reason = "cancelled";
    r->ticket->finish(std::move(r->result), "");
  }
}

void Scheduler::admit() {
  std::lock_guard lock(mutex_);
  // In order of arrival: a fusion row at the front waits for its K sequences (rows behind it do not overtake it).
  while (!queue_.empty() &&
         std::ssize(free_slots_) >= std::max<int64_t>(1, std::ssize(queue_.front()->request.fusion_experts))) {
    auto r = std::move(queue_.front());
    queue_.pop_front();
    const auto width = std::max<int64_t>(1, std::ssize(r->request.fusion_experts));
    for (int64_t k = 0; k < width; ++k) {
      r->slots.push_back(free_slots_.back());
      free_slots_.pop_back();
      cache_->kv.truncate(r->slots.back(), 0);
    }
    r->sampler.emplace(r->request.sampling);
    r->history = r->request.prompt;
    active_.push_back(std::move(r));
  }
  stats_.queued = std::ssize(queue_);
  stats_.active = std::ssize(active_);
}

at::Tensor Scheduler::forward_rows(const std::vector<size_t>& rows, const at::Tensor& ids,
                                   const std::vector<int64_t>& n_tokens) {
  const auto B = std::ssize(rows);
  // The pass's sequences: each row's, in order (a fusion row's K in a run); of_row[s]: the row of sequence s.
  std::vector<int64_t> seqs, of_row, seq_tokens;
  std::vector<const runtime::LoraAdapter*> adapters;
  bool any_adapter = false, any_fusion = false;
  std::map<int64_t, std::vector<int64_t>> steered;  // layer -> sequences of the pass with a delta there
  for (int64_t b = 0; b < B; ++b) {
    const Row& r = *active_[rows[b]];
    const auto& experts = r.request.fusion_experts;
    any_fusion |= !experts.empty();
    for (size_t k = 0; k < r.slots.size(); ++k) {
      for (const auto& [layer, delta] : r.request.steering) steered[layer].push_back(std::ssize(seqs));
      seqs.push_back(r.slots[k]);
      of_row.push_back(b);
      if (!n_tokens.empty()) seq_tokens.push_back(n_tokens[b]);
      adapters.push_back(experts.empty() ? r.request.adapter : experts[k]);
      any_adapter |= adapters.back() != nullptr;
    }
  }
  const auto S = std::ssize(seqs);
  runtime::ForwardOptions fo;
  fo.logits = runtime::ForwardOptions::Logits::kLast;
  if (any_adapter) {
    if (!cache_->hook || cache_->hook_rows != adapters) {
      cache_->hook = std::make_unique<runtime::LoraBatchHook>(adapters);
      cache_->hook_rows = adapters;
    }
    fo.linear_hook = cache_->hook.get();
  }
  std::map<int64_t, at::Tensor> deltas;  // layer -> [S, 1, D]
  for (const auto& [layer, in_seqs] : steered) {
    at::Tensor d = at::zeros({S, 1, model_.config().hidden_size});
    for (int64_t s : in_seqs) d[s][0].copy_(active_[rows[of_row[s]]]->request.steering.at(layer));
    deltas.emplace(layer, d);
  }
  if (!deltas.empty())
    fo.residual_hook = [&](int64_t layer, at::Tensor& x) {
      const auto it = deltas.find(layer);
      if (it != deltas.end()) x = x + it->second;
    };
  const at::Tensor seq_ids = S == B ? ids : ids.index_select(0, at::tensor(of_row, at::kLong));
  const at::Tensor logits =
      model_.forward(runtime::Batch{.ids = seq_ids, .n_tokens = seq_tokens, .seq = seqs}, cache_->kv, fo).logits;
  if (!any_fusion) return logits;
  // A fusion row's scores: Σ_k w_k · log_softmax(logits_k) as one [1, K] x [K, V] product, as make_lora_fusion's.
  std::vector<at::Tensor> scores;
  for (int64_t b = 0, s = 0; b < B; ++b) {
    const Row& r = *active_[rows[b]];
    const auto width = std::ssize(r.slots);
    if (r.request.fusion_experts.empty())
      scores.push_back(logits[s].to(at::kFloat));
    else
      scores.push_back(
          at::matmul(r.fusion_weights, at::log_softmax(logits.narrow(0, s, width).to(at::kFloat), -1)).squeeze(0));
    s += width;
  }
  return at::stack(scores);
}

void Scheduler::prefill() {
  std::vector<size_t> rows;
  std::vector<int64_t> n_tokens;
  int64_t longest = 0;
  for (size_t i = 0; i < active_.size(); ++i) {
    const Row& r = *active_[i];
    const int64_t left = std::ssize(r.request.prompt) - r.prefilled;
    if (r.finished || left == 0) continue;
    rows.push_back(i);
    n_tokens.push_back(std::min(left, options_.prefill_chunk));
    longest = std::max(longest, n_tokens.back());
  }
  if (rows.empty()) return;
  at::Tensor ids = at::zeros({std::ssize(rows), longest}, at::kLong);
  for (size_t b = 0; b < rows.size(); ++b) {
    const Row& r = *active_[rows[b]];
    std::vector<int64_t> chunk(r.request.prompt.begin() + r.prefilled,
                               r.request.prompt.begin() + r.prefilled + n_tokens[b]);
    ids[static_cast<int64_t>(b)].narrow(0, 0, n_tokens[b]).copy_(at::tensor(chunk, at::kLong));
  }
  const at::Tensor logits = forward_rows(rows, ids, n_tokens);
  int64_t forwarded = 0;
  for (size_t b = 0; b < rows.size(); ++b) {
    Row& r = *active_[rows[b]];
    r.prefilled += n_tokens[b];
    forwarded += n_tokens[b];
    if (r.prefilled == std::ssize(r.request.prompt)) r.logits = logits[static_cast<int64_t>(b)];
  }
  std::lock_guard lock(mutex_);
  ++stats_.prefill_passes;
  stats_.prefill_tokens += forwarded;
}

void Scheduler::sample_ready() {
  int64_t sampled = 0;
  for (size_t i = 0; i < active_.size(); ++i) {
    Row& r = *active_[i];
    if (r.finished || !r.logits.defined()) continue;
    const int64_t next = r.sampler->sample(r.logits, r.history);
    r.logits = at::Tensor();
    ++sampled;
    r.history.push_back(next);
    r.result.ids.push_back(next);
    const auto& stop_ids = r.request.stop_ids;
    bool stop = std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end();
    std::string text;
    if (tokenizer_) {
      text = runtime::decode_generated(*tokenizer_, r.result.ids);
      const size_t cut = find_stop(text, r.request.stop_strings);
      if (cut != std::string::npos) text.resize(cut), stop = true;
    }
    if (stop) r.result.finish_reason = "stop";
    if (stop || std::ssize(r.result.ids) == r.budget) {
      r.result.text = text;
      retire(i, r.result.finish_reason.empty() ? "length" : "stop");
      continue;
    }
    r.ticket->publish(text.substr(0, visible_length(text, r.request.stop_strings)));
    r.pending = next;
  }
  std::lock_guard lock(mutex_);
  stats_.tokens += sampled;
}

void Scheduler::decode() {
  std::vector<size_t> rows;
  std::vector<int64_t> toks;
  for (size_t i = 0; i < active_.size(); ++i)
    if (!active_[i]->finished && active_[i]->pending >= 0) rows.push_back(i), toks.push_back(active_[i]->pending);
  if (rows.empty()) return;
  const at::Tensor logits = forward_rows(rows, at::tensor(toks, at::kLong).unsqueeze(1), {});
  int64_t seqs = 0;
  for (size_t b = 0; b < rows.size(); ++b) {
    active_[rows[b]]->pending = -1;
    active_[rows[b]]->logits = logits[static_cast<int64_t>(b)];
    seqs += std::ssize(active_[rows[b]]->slots);
  }
  std::lock_guard lock(mutex_);
  ++stats_.steps;
  stats_.step_rows += seqs;
  stats_.max_step_rows = std::max(stats_.max_step_rows, seqs);
}

void Scheduler::retire(size_t index, const std::string& reason, const std::string& error) {
  Row& r = *active_[index];
  if (r.finished) return;
  r.finished = true;
  if (r.result.finish_reason.empty() || reason != "stop") r.result.finish_reason = reason;
  if (reason != "stop" && reason != "length" && tokenizer_) {
    r.result.text = runtime::decode_generated(*tokenizer_, r.result.ids);
    const size_t cut = find_stop(r.result.text, r.request.stop_strings);
    if (cut != std::string::npos) r.result.text.resize(cut);
  }
  for (int64_t slot : r.slots) cache_->kv.truncate(slot, 0);
  {
    std::lock_guard lock(mutex_);
    for (auto it = r.slots.rbegin(); it != r.slots.rend(); ++it) free_slots_.push_back(*it);
    if (reason == "cancelled")
      ++stats_.rows_cancelled;
    else if (reason == "error")
      ++stats_.rows_failed;
    else
      ++stats_.rows_finished;
  }
  r.ticket->finish(std::move(r.result), error);
}

}  // namespace palign::server
