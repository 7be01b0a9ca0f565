// KV cache with llama.cpp-style sequence operations. Holds n_seq independent sequences; each has its own length.
// Storage per layer: K and V [n_seq, n_kv_head, capacity, head_dim] float32, zero-initialised, grown on demand.
// fork/keep/truncate are the primitives of best-of-N, ARGS and the server (compare seq_cp/seq_keep/seq_rm).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace palign::runtime {

struct ModelConfig;

class KvCache {
 public:
  // max_len is the model's context limit; capacity grows from initial_capacity up to it.
  KvCache(int64_t n_layer, int64_t n_kv_head, int64_t head_dim, int64_t n_seq, int64_t max_len,
          int64_t initial_capacity = 64);
  static KvCache for_model(const ModelConfig& config, int64_t n_seq, int64_t initial_capacity = 64);

  int64_t n_seq() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t n_layer() const { return static_cast<int64_t>(k_.size()); }
  int64_t length(int64_t seq) const;
  int64_t max_len() const { return max_len_; }
  int64_t capacity() const { return capacity_; }

  // dst becomes a copy of the first n positions of src (all of src when n < 0). dst may equal src (then it is
  // truncated to n). Throws kInvalidArgument for bad sequence indices or n beyond src's length.
  void fork(int64_t src, int64_t dst, int64_t n = -1);
  // Forks src into every other sequence. With from > 0 only positions [from, n) are copied: the other sequences
  // must already hold src's first `from` positions (a shared prefix, e.g. ARGS' candidate rows after one of them was
  // chosen), so a step costs one position, not the whole prefix. Every sequence ends with length n. Throws
  // kInvalidArgument for a bad src, n beyond src's length, from outside [0, n] or a sequence shorter than from.
  void fork_all(int64_t src, int64_t n = -1, int64_t from = 0);
  // Drops positions >= pos of seq.
  void truncate(int64_t seq, int64_t pos);
  // Empties every sequence except seq.
  void keep(int64_t seq);
  void clear();

  // For model implementations: ensures capacity >= len (throws kInvalidArgument past max_len) and the raw storage.
  void reserve(int64_t len);
  at::Tensor& k(int64_t layer) { return k_[layer]; }
  at::Tensor& v(int64_t layer) { return v_[layer]; }
  void set_length(int64_t seq, int64_t len);

 private:
  void check_seq(int64_t seq, const char* what) const;
  std::vector<at::Tensor> k_, v_;
  std::vector<int64_t> lengths_;
  int64_t n_kv_head_, head_dim_, max_len_, capacity_;
};

}  // namespace palign::runtime
