// UserTokens (see user_tokens.h).
#include "palign/runtime/user_tokens.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/base/rng.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"

namespace palign::runtime {

namespace fs = std::filesystem;
using nlohmann::json;

UserTokens UserTokens::init(const Model& model, std::vector<std::string> users, int64_t n_tokens,
                            uint64_t seed) {
  PALIGN_CHECK(n_tokens >= 1, ErrorCode::kInvalidArgument, "[runtime.user_tokens] user tokens must be >= 1");
  const auto& c = model.config();
  Rng rng(derive_seed(seed, "pdpo.user_tokens"));
  std::vector<int64_t> ids;
  while (static_cast<int64_t>(ids.size()) < std::min(n_tokens, c.vocab_size)) {
    const auto id = static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(c.vocab_size)));
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  while (static_cast<int64_t>(ids.size()) < n_tokens)
    ids.push_back(ids[ids.size() % static_cast<size_t>(c.vocab_size)]);
  UserTokens t;
  t.users = std::move(users);
  t.generic = model.token_embeddings(ids).to(at::kFloat).contiguous();  // [K, D]
  t.individual = at::zeros({static_cast<int64_t>(t.users.size()), n_tokens, c.hidden_size}, at::kFloat);
  return t;
}

int64_t UserTokens::slot(const std::string& user) const {
  if (user.empty()) return 0;
  const auto it = std::find(users.begin(), users.end(), user);
  return it == users.end() ? 0 : static_cast<int64_t>(it - users.begin()) + 1;
}

at::Tensor UserTokens::table() const {
  return at::cat({generic, (generic.unsqueeze(0) + individual).reshape({-1, generic.size(1)})});
}

std::vector<int64_t> UserTokens::prefix(int64_t slot, int64_t vocab_size) const {
  std::vector<int64_t> ids;
  for (int64_t k = 0; k < n_tokens(); ++k) ids.push_back(vocab_size + slot * n_tokens() + k);
  return ids;
}

void UserTokens::save(const fs::path& file) const {
  save_safetensors(file, {{"generic", generic.detach()}, {"individual", individual.detach()}},
                            {{"format", "palign.user_tokens"}, {"users", json(users).dump()}});
}

UserTokens UserTokens::load(const fs::path& file, int64_t hidden_size) {
  PALIGN_CHECK(fs::exists(file), ErrorCode::kNotFound, "[runtime.user_tokens] no user tokens at ", file.string());
  const auto st = SafetensorsFile::open(file);
  PALIGN_CHECK(st.contains("generic") && st.contains("individual") && st.metadata().count("users"),
               ErrorCode::kInvalidArgument, "[runtime.user_tokens] ", file.string(),
               " is not a user-token file (needs tensors generic, individual and users metadata)");
  UserTokens t;
  try {
    t.users = json::parse(st.metadata().at("users")).get<std::vector<std::string>>();
  } catch (const json::exception&) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.user_tokens] ", file.string(),
                 "'s users metadata is not a JSON array of strings");
  }
  t.generic = st.get_f32("generic");
  t.individual = st.get_f32("individual");
  const auto N = static_cast<int64_t>(t.users.size());
  PALIGN_CHECK(t.generic.dim() == 2 && t.generic.size(0) >= 1 && t.generic.size(1) == hidden_size &&
                   t.individual.dim() == 3 && t.individual.size(0) == N &&
                   t.individual.size(1) == t.generic.size(0) && t.individual.size(2) == hidden_size,
               ErrorCode::kInvalidArgument, "[runtime.user_tokens] ", file.string(), " holds tokens of shape ",
               t.generic.sizes(), " / ", t.individual.sizes(), " for ", N, " users; the model needs [K, ", hidden_size,
               "] / [", N, ", K, ", hidden_size, "]");
  return t;
}

}  // namespace palign::runtime
