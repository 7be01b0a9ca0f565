// Batched generation over a shared, forked prompt cache (see generate.h).
#include "palign/runtime/generate.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/runtime/model.h"
#include "palign/runtime/tokenizer.h"

namespace palign::runtime {

std::string GenerateOptions::validate() const {
  if (max_new_tokens < 0) return "max-new-tokens must be >= 0";
  for (const auto& s : stop_strings)
    if (s.empty()) return "stop strings must not be empty";
  return sampling.validate();
}

bool GenerateOptions::equal_but_seed(const GenerateOptions& o) const {
  const SamplingOptions &a = sampling, &b = o.sampling;
  const bool same_sampling = a.greedy == b.greedy && a.temperature == b.temperature && a.top_k == b.top_k &&
                             a.top_p == b.top_p && a.min_p == b.min_p && a.repetition_penalty == b.repetition_penalty;
  const bool no_hooks = !residual_hook && !o.residual_hook && !row_residual_hook && !o.row_residual_hook &&
                        row_seeds.empty() && o.row_seeds.empty() && !end_segment && !o.end_segment;
  return same_sampling && no_hooks && max_new_tokens == o.max_new_tokens && stop_ids == o.stop_ids &&
         stop_strings == o.stop_strings && linear_hook == o.linear_hook && virtual_tokens == o.virtual_tokens;
}

namespace {
// Position of the first stop string in text, or npos.
size_t find_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const auto& s : stops) best = std::min(best, text.find(s));
  return best;
}
}  // namespace

namespace {

// The decode loop over rows: row i continues prompts[i] (shared: every row continues prompts[0], prefilled once and
// forked) with the sampler seeded options.row_seeds[i] (or options.sampling.seed + i), within its own budget.
std::vector<GenerateResult> generate_rows(const Model& model, const Tokenizer* tokenizer,
                                          const std::vector<std::span<const int64_t>>& prompts, bool shared,
                                          int64_t n_rows, const GenerateOptions& options) {
  const std::string err = options.validate();
  PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[runtime.generate] ", err);
  PALIGN_CHECK(n_rows >= 1, ErrorCode::kInvalidArgument, "[runtime.generate] n_samples must be >= 1");
  PALIGN_CHECK(options.row_seeds.empty() || (!shared && std::ssize(options.row_seeds) == n_rows),
               ErrorCode::kInvalidArgument, "[runtime.generate] ", options.row_seeds.size(), " row seeds for ", n_rows,
               " rows; give one seed per prompt (generate_each), or none");
  PALIGN_CHECK(options.stop_strings.empty() || tokenizer, ErrorCode::kInvalidArgument,
               "[runtime.generate] stop strings need a tokenizer");
  const int64_t max_pos = model.config().max_position;
  std::vector<int64_t> budget(n_rows);
  int64_t longest = 0, most = 0;
  for (int64_t i = 0; i < n_rows; ++i) {
    const auto& prompt = prompts[shared ? 0 : i];
    const auto P = static_cast<int64_t>(prompt.size());
    PALIGN_CHECK(P > 0, ErrorCode::kInvalidArgument,
                 "[runtime.generate] the prompt is empty; give some text or token ids");
    PALIGN_CHECK(P <= max_pos, ErrorCode::kInvalidArgument, "[runtime.generate] the prompt has ", P,
                 " tokens, more than the model's context of ", max_pos, "; shorten it");
    // The budget is clipped to the context (as transformers and llama.cpp do), never an error on its own.
    budget[i] = std::min(options.max_new_tokens, max_pos - P);
    longest = std::max(longest, P);
    most = std::max(most, P + budget[i]);
  }
  std::vector<GenerateResult> results(n_rows);
  std::vector<bool> done(n_rows, false);
  int64_t active = n_rows;
  for (int64_t i = 0; i < n_rows; ++i)
    if (budget[i] == 0) results[i].finish_reason = "length", done[i] = true, --active;
  if (active == 0) return results;
  std::vector<Sampler> samplers;
  for (int64_t i = 0; i < n_rows; ++i) {
    SamplingOptions so = options.sampling;
    so.seed = options.row_seeds.empty() ? so.seed + static_cast<uint64_t>(i) : options.row_seeds[i];
    samplers.emplace_back(so);
  }
  KvCache cache = model.make_cache(n_rows, std::min<int64_t>(most, max_pos));
  ForwardOptions fo;
  fo.logits = ForwardOptions::Logits::kLast;
  fo.linear_hook = options.linear_hook;
  fo.residual_hook = options.residual_hook;
  if (options.virtual_tokens) fo.virtual_tokens = *options.virtual_tokens;
  std::vector<int64_t> rows;  // the rows of the forward in flight, for row_residual_hook
  if (options.row_residual_hook) {
    PALIGN_CHECK(!options.residual_hook, ErrorCode::kInvalidArgument,
                 "[runtime.generate] give residual_hook or row_residual_hook, not both");
    fo.residual_hook = [&](int64_t layer, at::Tensor& x) { options.row_residual_hook(layer, x, rows); };
  }
  at::Tensor logits;  // [n_rows, V]
  std::vector<std::vector<int64_t>> history(n_rows);
  if (shared) {
    const auto& prompt = prompts[0];
    rows = {0};  // the shared prompt is prefilled once, as row 0 (sample 0), then forked
    at::Tensor ids = at::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), at::kLong).unsqueeze(0);
    logits = model.forward(Batch{.ids = ids, .n_tokens = {}, .seq = {0}}, cache, fo).logits;  // [1, V]
    cache.fork_all(0);
    logits = logits.expand({n_rows, logits.size(1)});
    history.assign(n_rows, std::vector<int64_t>(prompt.begin(), prompt.end()));
  } else {
    // One right-padded prefill of every row's own prompt.
    at::Tensor ids = at::zeros({n_rows, longest}, at::kLong);
    std::vector<int64_t> n_tokens, seqs;
    for (int64_t i = 0; i < n_rows; ++i) {
      history[i].assign(prompts[i].begin(), prompts[i].end());
      const auto P = static_cast<int64_t>(history[i].size());
      ids[i].narrow(0, 0, P).copy_(at::tensor(history[i], at::kLong));
      n_tokens.push_back(P);
      seqs.push_back(i);
    }
    rows = seqs;
    logits = model.forward(Batch{.ids = ids, .n_tokens = n_tokens, .seq = seqs}, cache, fo).logits;
  }

  // Virtual tokens are not text: the repetition penalty sees real tokens only.
  const int64_t vocab = model.config().vocab_size;
  for (auto& h : history) std::erase_if(h, [vocab](int64_t id) { return id >= vocab; });
  while (active > 0) {
    std::vector<int64_t> next(n_rows, 0);
    rows.clear();
    for (int64_t i = 0; i < n_rows; ++i) {
      if (done[i]) continue;
      if (options.end_segment && !results[i].ids.empty() && options.end_segment(i, logits[i])) {
        results[i].finish_reason = "segment";
        done[i] = true, --active;
        continue;
      }
      next[i] = samplers[i].sample(logits[i], history[i]);
      history[i].push_back(next[i]);
      results[i].ids.push_back(next[i]);
      bool stop = std::find(options.stop_ids.begin(), options.stop_ids.end(), next[i]) != options.stop_ids.end();
      if (!stop && !options.stop_strings.empty()) {
        const std::string text = decode_generated(*tokenizer, results[i].ids);
        stop = find_stop(text, options.stop_strings) != std::string::npos;
      }
      if (stop) results[i].finish_reason = "stop";
      if (stop || static_cast<int64_t>(results[i].ids.size()) == budget[i]) done[i] = true, --active;
    }
    if (active == 0) break;
    // Decode one token for every unfinished row in one batched forward.
    for (int64_t i = 0; i < n_rows; ++i)
      if (!done[i]) rows.push_back(i);
    std::vector<int64_t> toks;
    for (int64_t r : rows) toks.push_back(next[r]);
    at::Tensor step_ids = at::tensor(toks, at::kLong).unsqueeze(1);
    at::Tensor out = model.forward(Batch{.ids = step_ids, .n_tokens = {}, .seq = rows}, cache, fo).logits;
    logits = at::zeros({n_rows, out.size(1)});
    logits.index_copy_(0, at::tensor(rows, at::kLong), out);
  }
  for (int64_t i = 0; i < n_rows; ++i) {
    auto& r = results[i];
    if (r.finish_reason.empty()) r.finish_reason = "length";
    if (tokenizer) {
      r.text = decode_generated(*tokenizer, r.ids);
      const size_t cut = find_stop(r.text, options.stop_strings);
      if (cut != std::string::npos) r.text.resize(cut);
    }
  }
  return results;
}

}  // namespace

std::vector<GenerateResult> generate(const Model& model, const Tokenizer* tokenizer, std::span<const int64_t> prompt,
                                     const GenerateOptions& options, int64_t n_samples) {
  return generate_rows(model, tokenizer, {prompt}, /*shared=*/true, n_samples, options);
}

std::vector<GenerateResult> generate_each(const Model& model, const Tokenizer* tokenizer,
                                          const std::vector<std::vector<int64_t>>& prompts,
                                          const GenerateOptions& options) {
  PALIGN_CHECK(!prompts.empty(), ErrorCode::kInvalidArgument, "[runtime.generate_each] no prompts");
  std::vector<std::span<const int64_t>> spans(prompts.begin(), prompts.end());
  return generate_rows(model, tokenizer, spans, /*shared=*/false, static_cast<int64_t>(prompts.size()), options);
}

std::string decode_generated(const Tokenizer& tokenizer, std::span<const int64_t> ids) {
  std::vector<int32_t> known;
  known.reserve(ids.size());
  for (int64_t id : ids)
    if (id >= 0 && id < tokenizer.vocab_size() && tokenizer.id_to_token(static_cast<int32_t>(id)))
      known.push_back(static_cast<int32_t>(id));
  return tokenizer.decode(known, /*skip_special=*/true);
}

std::vector<int64_t> default_stop_ids(const std::filesystem::path& model_dir, const Model& model,
                                      const Tokenizer* tokenizer) {
  std::vector<int64_t> ids;
  auto add = [&](int64_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  const auto gen_path = model_dir / "generation_config.json";
  bool from_generation_config = false;
  if (std::filesystem::exists(gen_path)) {
    try {
      std::ifstream in(gen_path);
      auto j = nlohmann::json::parse(in);
      if (j.contains("eos_token_id")) {
        const auto& e = j["eos_token_id"];
        if (e.is_number_integer()) add(e.get<int64_t>()), from_generation_config = true;
        if (e.is_array())
          for (const auto& x : e)
            if (x.is_number_integer()) add(x.get<int64_t>()), from_generation_config = true;
      }
    } catch (const nlohmann::json::exception& e) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.generate] ", gen_path.string(), " is not valid JSON (",
                   e.what(), ")");
    }
  }
  if (!from_generation_config)
    for (int64_t id : model.config().eos_token_ids) add(id);
  if (tokenizer && tokenizer->eos_id()) add(*tokenizer->eos_id());
  return ids;
}

}  // namespace palign::runtime
