// palign train tokenizer: trains a byte-level BPE tokenizer on a JSONL corpus and writes a Hugging Face folder.
#include <cstdio>

#include "common.h"
#include "palign/base/error.h"
#include "palign/training/bpe_trainer.h"

namespace palign::cli {

Command add_train_tokenizer(CLI::App& train) {
  struct Flags {
    std::string corpus, out, split = "train";
    training::BpeTrainOptions o;
    bool no_progress = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = train.add_subcommand("tokenizer", "Train a byte-level BPE tokenizer on a JSONL corpus");
  app->add_option("--corpus", f->corpus, "JSON Lines with {\"text\", \"split\"?}")->required();
  app->add_option("--out", f->out, "Output folder (tokenizer.json, tokenizer_config.json)")->required();
  app->add_option("--vocab-size", f->o.vocab_size, "Total vocabulary, byte symbols and special tokens included")
      ->capture_default_str();
  app->add_option("--special-tokens", f->o.special_tokens,
                  "Comma-separated special tokens, ids 0, 1, ...; the first is end-of-text/BOS, the second padding")
      ->delimiter(',')
      ->capture_default_str();
  app->add_option("--min-frequency", f->o.min_frequency, "Pairs seen fewer times are not merged")
      ->capture_default_str();
  app->add_option("--split", f->split, "Records of this split (no split counts as train; \"\" = all records)")
      ->capture_default_str();
  app->add_flag("--no-progress", f->no_progress, "No progress bar");
  return {app, [f] {
            f->o.progress = !f->no_progress;
            const std::string err = f->o.validate();
            PALIGN_CHECK(err.empty(), ErrorCode::kInvalidArgument, "[cli.train.tokenizer] ", err);
            const auto texts = training::read_corpus_texts(f->corpus, f->split);
            const auto r = training::train_bpe_tokenizer(texts, f->o, f->out);
            std::printf("trained a tokenizer with vocab %ld (%ld merges) on %zu texts (%ld words, %ld unique) in "
                        "%.2f s; wrote %s/tokenizer.json\n",
                        static_cast<long>(r.vocab_size), static_cast<long>(r.merges), texts.size(),
                        static_cast<long>(r.words), static_cast<long>(r.unique_words), r.seconds, f->out.c_str());
            return 0;
          }};
}

}  // namespace palign::cli
