// Steering vectors: the file format and mean-difference vectors (see steering_vectors.h).
#include "palign/scoring/steering_vectors.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <map>
#include <set>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/safetensors.h"

namespace palign::scoring {

namespace {

constexpr const char* kFormat = "palign.steering";

void check_vector(const SteeringVector& v, int64_t hidden, int64_t n_layer, const std::string& where) {
  PALIGN_CHECK(!v.name.empty(), ErrorCode::kInvalidArgument, "[scoring.steering] ", where,
               ": a steering vector has no name; name it after its preference dimension");
  PALIGN_CHECK(v.vector.defined() && v.vector.dim() == 1 && v.vector.size(0) == hidden, ErrorCode::kInvalidArgument,
               "[scoring.steering] ", where, ": vector '", v.name, "' has shape ",
               v.vector.defined() ? v.vector.sizes() : at::IntArrayRef{}, ", expected [", hidden,
               "] (the model's hidden size)");
  PALIGN_CHECK(v.layer >= 0 && (n_layer < 0 || v.layer < n_layer), ErrorCode::kInvalidArgument, "[scoring.steering] ",
               where, ": vector '", v.name, "' is for layer ", v.layer, " but the model has ", n_layer,
               " layers (0-based)");
}

}  // namespace

void save_steering_vectors(const std::filesystem::path& file, const std::vector<SteeringVector>& vectors) {
  PALIGN_CHECK(!vectors.empty(), ErrorCode::kInvalidArgument, "[scoring.steering] no steering vectors to save");
  const int64_t hidden = vectors[0].vector.defined() ? vectors[0].vector.numel() : 0;
  std::set<std::string> names;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> meta{{"format", kFormat}, {"hidden_size", std::to_string(hidden)}};
  for (const auto& v : vectors) {
    check_vector(v, hidden, -1, file.string());
    PALIGN_CHECK(names.insert(v.name).second, ErrorCode::kInvalidArgument, "[scoring.steering] two vectors named '",
                 v.name, "'; one vector per dimension");
    tensors.emplace_back(v.name, v.vector.detach().to(at::kFloat).contiguous());
    meta["layer." + v.name] = std::to_string(v.layer);
  }
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  runtime::save_safetensors(file, tensors, meta);
}

std::vector<SteeringVector> load_steering_vectors(const std::filesystem::path& file,
                                                  const runtime::ModelConfig& config) {
  const auto st = runtime::SafetensorsFile::open(file);
  const auto& meta = st.metadata();
  const auto format = meta.find("format");
  PALIGN_CHECK(format != meta.end() && format->second == kFormat, ErrorCode::kInvalidArgument, "[scoring.steering] ",
               file.string(), " is not a steering-vector file (no \"format\": \"", kFormat,
               "\" metadata); make one with palign train steer");
  std::vector<SteeringVector> out;
  for (const auto& [name, info] : st.tensors()) {
    const auto layer = meta.find("layer." + name);
    PALIGN_CHECK(layer != meta.end(), ErrorCode::kInvalidArgument, "[scoring.steering] ", file.string(), ": vector '",
                 name, "' has no \"layer.", name, "\" metadata");
    SteeringVector v{.name = name, .layer = -1, .vector = st.get_f32(name).clone()};
    try {
      v.layer = std::stoll(layer->second);
    } catch (const std::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.steering] ", file.string(), ": layer '", layer->second,
                   "' of vector '", name, "' is not a number");
    }
    check_vector(v, config.hidden_size, config.n_layer, file.string());
    out.push_back(std::move(v));
  }
  PALIGN_CHECK(!out.empty(), ErrorCode::kInvalidArgument, "[scoring.steering] ", file.string(), " holds no vectors");
  return out;
}

at::Tensor mean_difference_vector(const runtime::Model& model, const std::vector<TokenPair>& pairs, int64_t layer,
                                  const std::function<void(int64_t, int64_t)>& progress) {
  const auto& c = model.config();
  PALIGN_CHECK(!pairs.empty(), ErrorCode::kInvalidArgument,
               "[scoring.steering] no pairs for a mean-difference vector; give the dimension's labelled pairs");
  PALIGN_CHECK(layer >= 0 && layer < c.n_layer, ErrorCode::kInvalidArgument, "[scoring.steering] layer ", layer,
               " is outside the model's ", c.n_layer, " layers (0-based)");
  c10::InferenceMode guard;
  // Rows: every pair's prompt + chosen, then prompt + rejected; right-padded batches of up to 32 rows.
  std::vector<const std::vector<int64_t>*> prompts, responses;
  for (const auto& p : pairs) {
    PALIGN_CHECK(!p.chosen.empty() && !p.rejected.empty(), ErrorCode::kInvalidArgument,
                 "[scoring.steering] a pair has an empty response; drop it from the data");
    prompts.push_back(&p.prompt), responses.push_back(&p.chosen);
  }
  for (const auto& p : pairs) prompts.push_back(&p.prompt), responses.push_back(&p.rejected);
  const auto n_rows = static_cast<int64_t>(responses.size());
  at::Tensor means = at::empty({n_rows, c.hidden_size}, at::kFloat);
  constexpr int64_t kChunk = 32;
  for (int64_t begin = 0; begin < n_rows; begin += kChunk) {
    const int64_t end = std::min(n_rows, begin + kChunk);
    int64_t width = 0;
    for (int64_t r = begin; r < end; ++r)
      width = std::max<int64_t>(width, static_cast<int64_t>(prompts[r]->size() + responses[r]->size()));
    PALIGN_CHECK(width <= c.max_position, ErrorCode::kInvalidArgument, "[scoring.steering] a pair has ", width,
                 " tokens, more than the model's context of ", c.max_position);
    at::Tensor ids = at::full({end - begin, width}, 0, at::kLong);
    std::vector<int64_t> n_tokens;
    for (int64_t r = begin; r < end; ++r) {
      std::vector<int64_t> row = *prompts[r];
      row.insert(row.end(), responses[r]->begin(), responses[r]->end());
      ids[r - begin].narrow(0, 0, static_cast<int64_t>(row.size())).copy_(at::tensor(row, at::kLong));
      n_tokens.push_back(static_cast<int64_t>(row.size()));
    }
    at::Tensor captured;
    runtime::ForwardOptions fo;
    fo.logits = runtime::ForwardOptions::Logits::kNone;
    fo.residual_hook = [&](int64_t l, at::Tensor& x) {
      if (l == layer) captured = x.clone();
    };
    model.forward_uncached(runtime::Batch{.ids = ids, .n_tokens = n_tokens, .seq = {}}, fo);
    for (int64_t r = begin; r < end; ++r) {
      const auto p = static_cast<int64_t>(prompts[r]->size());
      const auto n = static_cast<int64_t>(responses[r]->size());
      means[r] = captured[r - begin].narrow(0, p, n).mean(0);
    }
    if (progress) progress(end, n_rows);
  }
  const auto n = static_cast<int64_t>(pairs.size());
  return means.narrow(0, 0, n).mean(0) - means.narrow(0, n, n).mean(0);
}

}  // namespace palign::scoring
