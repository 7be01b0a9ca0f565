// palign train lm / eval perplexity: the language-model trainer and its held-out metric.
#include <cstdio>

#include "common.h"
#include "palign/base/error.h"
#include "palign/runtime/tokenizer.h"
#include "palign/training/lm_trainer.h"

namespace palign::cli {

namespace fs = std::filesystem;

Command add_train_lm(CLI::App& train) {
  struct Flags {
    std::string corpus, tokenizer, out;
    training::LmTrainOptions o;
    bool no_resume = false, no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = train.add_subcommand("lm", "Train a Llama-architecture language model on a JSONL corpus");
  app->add_option("--corpus", f->corpus, "JSON Lines with {\"text\", \"split\"}")->required();
  app->add_option("--tokenizer", f->tokenizer, "Folder with tokenizer.json (from `palign train tokenizer`)")->required();
  app->add_option("--out", f->out, "Output model folder (checkpoints go to OUT/checkpoint)")->required();
  auto& o = f->o;
  app->add_option("--layers", o.layers, "Decoder layers")->capture_default_str();
  app->add_option("--d-model", o.d_model, "Hidden size")->capture_default_str();
  app->add_option("--heads", o.heads, "Attention heads")->capture_default_str();
  app->add_option("--kv-heads", o.kv_heads, "Key/value heads (GQA)")->capture_default_str();
  app->add_option("--ffn", o.ffn, "MLP size (0: 8/3 x d-model)")->capture_default_str();
  app->add_option("--ctx", o.ctx, "Context length (training window)")->capture_default_str();
  app->add_option("--steps", o.steps, "Optimizer steps")->capture_default_str();
  app->add_option("--batch", o.batch, "Sequences per micro-batch")->capture_default_str();
  app->add_option("--grad-accum", o.grad_accum, "Micro-batches per step")->capture_default_str();
  app->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  app->add_option("--min-lr", o.min_lr, "Final learning rate of the cosine decay")->capture_default_str();
  app->add_option("--warmup", o.warmup, "Linear warm-up steps")->capture_default_str();
  app->add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  app->add_option("--clip", o.clip, "Gradient norm clip (0 = off)")->capture_default_str();
  app->add_option("--eval-every", o.eval_every, "Validation every N steps")->capture_default_str();
  app->add_option("--eval-batches", o.eval_batches, "Validation batches")->capture_default_str();
  app->add_option("--checkpoint-every", o.checkpoint_every, "Checkpoint every N steps")->capture_default_str();
  app->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  app->add_option("--max-minutes", o.max_minutes, "Stop with a checkpoint after this long (0 = no limit)")
      ->capture_default_str();
  app->add_option("--stop-at", o.stop_at, "Stop at this step of the --steps schedule (0 = at its end)")
      ->capture_default_str();
  app->add_flag("--no-resume", f->no_resume, "Start over even if OUT/checkpoint exists");
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f] {
            f->o.resume = !f->no_resume;
            f->o.progress = !f->no_progress;
            const std::string err = f->o.validate();
            PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[cli.train.lm] ", err);
            auto tok = runtime::Tokenizer::from_dir(f->tokenizer);
            PALIGN_CHECK(tok.eos_id().has_value(), ErrorCode::kInvalidArgument, "[cli.train.lm] the tokenizer in ",
                         f->tokenizer, " has no end-of-text token");
            auto data = training::tokenize_corpus(f->corpus, tok, *tok.eos_id());
            std::printf("corpus: %ld records, %zu train tokens, %zu valid tokens\n",
                         static_cast<long>(data.n_records), data.train.size(), data.valid.size());
            auto r = training::train_lm(data, f->tokenizer, f->out, f->o);
            std::printf("trained %.2fM parameters for steps %ld..%ld in %.0f s (%.0f tokens/s); final valid loss %.4f\n",
                        r.n_params / 1e6, static_cast<long>(r.first_step), static_cast<long>(r.last_step), r.seconds,
                        r.tokens_per_second, r.valid_loss.empty() ? std::nan("") : r.valid_loss.back().second);
            return 0;
          }};
}

Command add_eval_perplexity(CLI::App& eval) {
  struct Flags {
    std::string model, data, split = "test";
    bool json = false, no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = eval.add_subcommand("perplexity", "Token-level perplexity of a causal LM on a JSONL corpus");
  app->add_option("--model", f->model, "Model folder (default: the shipped model)");
  app->add_option("--data", f->data, "JSON Lines with {\"text\", \"split\"}")->required();
  app->add_option("--split", f->split, "Split to score (\"\" = all records)")->capture_default_str();
  app->add_flag("--json", f->json, "Print one JSON object");
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f] {
            auto r = training::eval_perplexity(resolve_model_dir(f->model), f->data, f->split, !f->no_progress);
            if (f->json)
              std::printf("{\"perplexity\": %.6f, \"mean_nll\": %.6f, \"tokens\": %ld, \"records\": %ld}\n",
                          r.perplexity, r.mean_nll, static_cast<long>(r.tokens), static_cast<long>(r.records));
            else
              std::printf("perplexity %.4f (mean NLL %.4f nats over %ld tokens of %ld records)\n", r.perplexity,
                          r.mean_nll, static_cast<long>(r.tokens), static_cast<long>(r.records));
            return 0;
          }};
}

}  // namespace palign::cli
