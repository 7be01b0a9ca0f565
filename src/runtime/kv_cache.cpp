// KvCache storage and sequence operations (see kv_cache.h).
#include "palign/runtime/kv_cache.h"

#include <torch/torch.h>

#include <algorithm>

#include "palign/base/error.h"
#include "palign/runtime/config.h"

namespace palign::runtime {

KvCache::KvCache(int64_t n_layer, int64_t n_kv_head, int64_t head_dim, int64_t n_seq, int64_t max_len,
                 int64_t initial_capacity)
    : lengths_(static_cast<size_t>(n_seq), 0),
      n_kv_head_(n_kv_head),
      head_dim_(head_dim),
      max_len_(max_len),
      capacity_(std::clamp<int64_t>(initial_capacity, 1, max_len)) {
  PALIGN_CHECK(n_seq >= 1 && n_layer >= 1 && max_len >= 1, ErrorCode::kInvalidArgument,
               "[runtime.KvCache] need at least one sequence, one layer and a positive length");
  for (int64_t i = 0; i < n_layer; ++i) {
    k_.push_back(at::zeros({n_seq, n_kv_head, capacity_, head_dim}));
    v_.push_back(at::zeros({n_seq, n_kv_head, capacity_, head_dim}));
  }
}

KvCache KvCache::for_model(const ModelConfig& c, int64_t n_seq, int64_t initial_capacity) {
  return KvCache(c.n_layer, c.n_kv_head, c.head_dim, n_seq, c.max_position, initial_capacity);
}

void KvCache::check_seq(int64_t seq, const char* what) const {
  PALIGN_CHECK(seq >= 0 && seq < n_seq(), ErrorCode::kInvalidArgument, "[runtime.KvCache.", what, "] sequence ", seq,
               " out of range [0, ", n_seq(), ")");
}

int64_t KvCache::length(int64_t seq) const {
  check_seq(seq, "length");
  return lengths_[seq];
}

void KvCache::set_length(int64_t seq, int64_t len) {
  check_seq(seq, "set_length");
  PALIGN_ASSERT(len >= 0 && len <= capacity_, "length ", len, " capacity ", capacity_);
  lengths_[seq] = len;
}

void KvCache::reserve(int64_t len) {
  PALIGN_CHECK(len <= max_len_, ErrorCode::kInvalidArgument, "[runtime.KvCache] a context of ", len,
               " tokens exceeds the model's maximum of ", max_len_, "; shorten the input (the prompt, text or ids)");
  if (len <= capacity_) return;
  int64_t cap = capacity_;
  while (cap < len) cap *= 2;
  cap = std::min(cap, max_len_);
  at::NoGradGuard guard;
  for (size_t layer = 0; layer < k_.size(); ++layer) {
    for (auto* store : {&k_[layer], &v_[layer]}) {
      auto grown = at::zeros({n_seq(), n_kv_head_, cap, head_dim_});
      grown.narrow(2, 0, capacity_).copy_(*store);
      *store = grown;
    }
  }
  capacity_ = cap;
}

void KvCache::fork(int64_t src, int64_t dst, int64_t n) {
  check_seq(src, "fork");
  check_seq(dst, "fork");
  if (n < 0) n = lengths_[src];
  PALIGN_CHECK(n <= lengths_[src], ErrorCode::kInvalidArgument, "[runtime.KvCache.fork] cannot fork ", n,
               " positions of a sequence of length ", lengths_[src]);
  if (src != dst && n > 0) {
    at::NoGradGuard guard;
    for (size_t layer = 0; layer < k_.size(); ++layer) {
      k_[layer][dst].narrow(1, 0, n).copy_(k_[layer][src].narrow(1, 0, n));
      v_[layer][dst].narrow(1, 0, n).copy_(v_[layer][src].narrow(1, 0, n));
    }
  }
  lengths_[dst] = n;
}

void KvCache::fork_all(int64_t src, int64_t n, int64_t from) {
  check_seq(src, "fork_all");
  if (n < 0) n = lengths_[src];
  PALIGN_CHECK(n <= lengths_[src], ErrorCode::kInvalidArgument, "[runtime.KvCache.fork_all] cannot fork ", n,
               " positions of a sequence of length ", lengths_[src]);
  PALIGN_CHECK(from >= 0 && from <= n, ErrorCode::kInvalidArgument, "[runtime.KvCache.fork_all] from = ", from,
               " must be in [0, ", n, "]");
  for (int64_t seq = 0; seq < n_seq(); ++seq)
    PALIGN_CHECK(lengths_[seq] >= from, ErrorCode::kInvalidArgument, "[runtime.KvCache.fork_all] sequence ", seq,
                 " has ", lengths_[seq], " positions, fewer than the shared prefix of ", from, " (from)");
  const int64_t count = n - from;
  if (count > 0 && n_seq() > 1) {
    at::NoGradGuard guard;
    // The sequences before and after src, so that no copy reads what it writes (no clone of the source needed).
    const std::pair<int64_t, int64_t> ranges[] = {{0, src}, {src + 1, n_seq()}};
    for (size_t layer = 0; layer < k_.size(); ++layer) {
      for (auto* store : {&k_[layer], &v_[layer]}) {
        const at::Tensor source = store->narrow(0, src, 1).narrow(2, from, count);
        for (const auto& [lo, hi] : ranges)
          if (hi > lo) store->narrow(0, lo, hi - lo).narrow(2, from, count).copy_(source.expand({hi - lo, -1, -1, -1}));
      }
    }
  }
  std::fill(lengths_.begin(), lengths_.end(), n);
}

void KvCache::truncate(int64_t seq, int64_t pos) {
  check_seq(seq, "truncate");
  PALIGN_CHECK(pos >= 0, ErrorCode::kInvalidArgument, "[runtime.KvCache.truncate] negative position ", pos);
  lengths_[seq] = std::min(lengths_[seq], pos);
}

void KvCache::keep(int64_t seq) {
  check_seq(seq, "keep");
  for (int64_t i = 0; i < n_seq(); ++i)
    if (i != seq) lengths_[i] = 0;
}

void KvCache::clear() { std::fill(lengths_.begin(), lengths_.end(), 0); }

}  // namespace palign::runtime
