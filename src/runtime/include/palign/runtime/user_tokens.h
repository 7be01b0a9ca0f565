// Learned user tokens: the input embeddings that a P-DPO adapter (`palign train policy --method pdpo`) puts before
// each prompt, one set per seen user and a generic set for the rest, served as virtual tokens. The file is
// OUT/user_tokens.safetensors beside the adapter.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace palign::runtime {

class Model;

// P-DPO's user tokens (Li et al. 2024; trained by training::fit_pdpo): K input embeddings e_u = g + d_u for each seen
// user u, the generic user's g for everyone else, put before the prompt as virtual tokens (ForwardOptions::
// virtual_tokens).
struct UserTokens {
  std::vector<std::string> users;  // the seen users; user i is slot i + 1 (slot 0: the generic user)
  at::Tensor generic;              // [K, D] float32
  at::Tensor individual;           // [N, K, D] float32: each user's offset d_u from the generic tokens

  // K generic tokens initialised to the input embeddings of K distinct tokens drawn with seed (as PEFT's prompt
  // tuning starts from vocabulary embeddings), every offset zero.
  static UserTokens init(const Model& model, std::vector<std::string> users, int64_t n_tokens, uint64_t seed);
  int64_t n_tokens() const { return generic.size(0); }
  // The slot of user (0, the generic user, for an unknown or empty id).
  int64_t slot(const std::string& user) const;
  // [(N + 1)·K, D]: the generic user's K rows, then user i's g + d_i (differentiable in generic and individual).
  at::Tensor table() const;
  // The virtual ids of slot's tokens, vocab_size + slot·K + k, to put before a prompt with table() as the
  // virtual-token table.
  std::vector<int64_t> prefix(int64_t slot, int64_t vocab_size) const;
  // safetensors: "generic", "individual" and the users as a JSON array in the metadata ("users").
  void save(const std::filesystem::path& file) const;
  // Throws kNotFound (no file), kInvalidArgument (malformed, or D differs from hidden_size).
  static UserTokens load(const std::filesystem::path& file, int64_t hidden_size);
};
inline constexpr const char* kUserTokensFile = "user_tokens.safetensors";

}  // namespace palign::runtime
