// Language-model pretraining with libtorch autograd through the runtime's own forward pass (one definition of the
// network): a Llama-architecture model, AdamW, linear warm-up then cosine decay, gradient clipping and accumulation,
// periodic validation, atomic checkpoints with resume, a deterministic seed and a progress bar.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace palign::runtime {
class Tokenizer;
struct ModelConfig;
}  // namespace palign::runtime

namespace palign::training {

// Token streams of a corpus: each record's tokens followed by the end-of-text id, concatenated per split.
struct TokenStreams {
  std::vector<int64_t> train, valid;
  int64_t n_records = 0;
};

// Reads {"text", "split"?} JSON Lines; records without a split count as train. Throws palign::Error
// (kNotFound / kInvalidArgument naming the line) for a missing file, a bad line or an empty train split.
TokenStreams tokenize_corpus(const std::filesystem::path& jsonl, const runtime::Tokenizer& tokenizer,
                             int64_t end_of_text_id);

struct LmTrainOptions {
  int64_t layers = 4;
  int64_t d_model = 256;
  int64_t heads = 4;
  int64_t kv_heads = 4;
  int64_t ffn = 0;  // 0: 8/3 x d_model rounded up to a multiple of 32
  int64_t ctx = 128;
  int64_t steps = 1000;
  int64_t batch = 16;
  int64_t grad_accum = 1;
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double clip = 1.0;  // max global gradient norm; 0 = off
  int64_t eval_every = 100;
  int64_t eval_batches = 16;
  int64_t checkpoint_every = 200;
  uint64_t seed = 0;
  bool resume = true;      // continue from OUT/checkpoint when it exists
  double max_minutes = 0;  // stop (with a checkpoint) after this much training time; 0 = no limit
  int64_t stop_at = 0;     // stop (with a checkpoint) at this step of the `steps`-long schedule; 0 = at the end
  bool progress = true;
  // Append new fields here.

  std::string validate() const;
  // The positions the architecture supports (ctx is the training window; the saved model allows this many).
  int64_t max_position() const { return ctx; }
};

struct LmTrainReport {
  std::vector<std::pair<int64_t, double>> train_loss;  // (step, mean loss of that step)
  std::vector<std::pair<int64_t, double>> valid_loss;
  int64_t first_step = 0;  // > 0 when resumed
  int64_t last_step = 0;
  double seconds = 0;
  double tokens_per_second = 0;
  int64_t n_params = 0;
};

// Fresh float32 weights for a Llama-architecture config with tied embeddings, under their Hugging Face names:
// N(0, 0.02), residual output projections (o_proj, down_proj) N(0, 0.02 / sqrt(2 * layers)) as in GPT-2, norms 1.
// Seeded through torch::manual_seed(seed).
std::map<std::string, at::Tensor> init_llama_weights(const runtime::ModelConfig& config, uint64_t seed,
                                                     bool requires_grad = true);

// Trains and writes a Hugging Face directory into out_dir (config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, generation_config.json) plus out_dir/checkpoint for resuming. tokenizer_dir is copied in.
// Throws palign::Error for bad options, a corpus too small for one window, an unwritable out_dir, or a checkpoint
// made with other architecture flags.
LmTrainReport train_lm(const TokenStreams& data, const std::filesystem::path& tokenizer_dir,
                       const std::filesystem::path& out_dir, const LmTrainOptions& options);

// Token-level perplexity of a causal LM on records of a JSONL file (split filter; empty = all). Each record is
// encoded with the tokenizer's special tokens (e.g. BOS) plus the end-of-text id when the tokenizer has one, and
// scored in windows of the model's context.
struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;
  int64_t tokens = 0;
  int64_t records = 0;
};
// progress: a bar over the records on stderr.
PerplexityResult eval_perplexity(const std::filesystem::path& model_dir, const std::filesystem::path& jsonl,
                                 const std::string& split, bool progress = false);

}  // namespace palign::training
