// The generation loop: prefill once, fork the prompt's KV cache into N continuations, decode them in one batch,
// stop on end-of-sequence ids, stop strings or the token budget.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "palign/runtime/sampler.h"

namespace at {
class Tensor;
}

namespace palign::runtime {

class LinearHook;

class Model;
class Tokenizer;

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  std::vector<int64_t> stop_ids;            // end-of-sequence ids; the token is kept in the output, as HF does
  std::vector<std::string> stop_strings;    // text is cut before the stop string; needs a tokenizer
  const LinearHook* linear_hook = nullptr;  // e.g. a LoRA adapter attached to every forward (see lora.h)
  // Called with each decoder layer's output residual stream on every forward (prompt and generated tokens), e.g.
  // steering vectors added to it (ForwardOptions::residual_hook).
  std::function<void(int64_t layer, at::Tensor& residual)> residual_hook;
  // As residual_hook, also told which sample (generate) or prompt (generate_each) each row of the residual is, for
  // per-row changes (e.g. each user's own steering vector); rows of finished samples leave the batch.
  std::function<void(int64_t layer, at::Tensor& residual, const std::vector<int64_t>& rows)> row_residual_hook;
  // Virtual tokens (ForwardOptions::virtual_tokens), borrowed: prompts may then hold ids V + j for row j of this
  // [E, D] table, e.g. a user's learned tokens before the text (P-DPO). They do not count as history for the
  // sampler's repetition penalty.
  const at::Tensor* virtual_tokens = nullptr;
  // generate_each: row i's sampling seed, one per prompt (empty: sampling.seed + i), for rows that are separate
  // requests with seeds of their own.
  std::vector<uint64_t> row_seeds;
  // Called with row i's next-token logits [V] (the model's, before the sampler's filters) once the row has generated
  // at least one token; true ends the row there, before sampling, with finish_reason "segment" (e.g. CARDS' cut where
  // the model's uncertainty rises). Unset: never.
  std::function<bool(int64_t row, const at::Tensor& logits)> end_segment;
  // Append new fields here.

  std::string validate() const;
  // True when rows under these options and other's can share one generate_each call: equal in every field but the
  // sampling seed, without hooks of either kind or row seeds (a new field must be compared here).
  bool equal_but_seed(const GenerateOptions& other) const;
};

struct GenerateResult {
  std::vector<int64_t> ids;   // new tokens only
  std::string text;           // decoded new tokens without special tokens (empty without a tokenizer)
  std::string finish_reason;  // "stop" (stop id or string), "length" or "segment" (end_segment)
};

// Generates n_samples continuations of prompt in one batch; sample i uses seed options.sampling.seed + i.
// tokenizer may be null (no text, no stop strings). Throws kInvalidArgument for an empty prompt, bad options, or a
// prompt + budget beyond the model's context (checked before any work).
std::vector<GenerateResult> generate(const Model& model, const Tokenizer* tokenizer, std::span<const int64_t> prompt,
                                     const GenerateOptions& options, int64_t n_samples = 1);

// One continuation of each prompt, all rows in one batch (a right-padded prefill, then one token per row per step):
// many users' requests at once. Row i uses seed options.row_seeds[i] (without row_seeds: options.sampling.seed + i)
// and gives the tokens generate(prompts[i]) with that seed gives. Throws as generate, and kInvalidArgument for no
// prompts or row_seeds of another size than prompts.
std::vector<GenerateResult> generate_each(const Model& model, const Tokenizer* tokenizer,
                                          const std::vector<std::vector<int64_t>>& prompts,
                                          const GenerateOptions& options);

// The text of generated ids: tokenizer.decode(ids, skip_special=true) without the ids the tokenizer lacks. A model
// whose weights' vocabulary is padded past its tokenizer's (Qwen2's is) can sample such ids; they decode to nothing
// instead of aborting the generation.
std::string decode_generated(const Tokenizer& tokenizer, std::span<const int64_t> ids);

// End-of-sequence ids of a model directory: generation_config.json's eos_token_id, else config.json's, plus the
// tokenizer's eos token.
std::vector<int64_t> default_stop_ids(const std::filesystem::path& model_dir, const Model& model,
                                      const Tokenizer* tokenizer);

}  // namespace palign::runtime
