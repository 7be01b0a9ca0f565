// Every decoding strategy's options in one type, filled from CLI flags or from JSON (what the server receives).
// Apart from strategy.h so that what parses a request's options needs no tensor library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace palign::decoding {

// Every strategy's options. visit_fields names each field once, for CLI flags (--name), JSON fields and help.
struct StrategyOptions {
  std::string models;               // fusion: comma-separated model or adapter directories
  std::string weights;              // fusion, steer: numbers in order, or name=number pairs
  std::string vectors;              // steer: a steering-vector file
  std::string statement;            // prompt
  std::string history;              // prompt: labelled pairs (JSONL)
  int64_t retrieve = 3;             // prompt
  std::string expert, antiexpert;   // proxy
  double alpha = 1.0;               // proxy
  std::string context;              // contrast
  std::string context_ids;          // contrast
  double lambda = 1.0;              // contrast, steer
  int64_t best_of = 4;              // best_of_n
  std::string reward;               // best_of_n, cd_block, args, cards
  std::string user;                 // best_of_n, cd_block, args, cards, sample (pdpo adapter)
  std::string user_pairs;           // best_of_n, cd_block, args, cards
  int64_t cd_k = 4, cd_block = 8;   // cd_block
  std::string reward_model;         // args: the same as reward
  int64_t args_k = 10;              // args
  double args_w = 1.0;              // args
  int64_t cards_k = 4;              // cards
  double cards_entropy = 5.5;       // cards
  double cards_margin = 0.0;        // cards
  int64_t cards_rounds = 3;         // cards
  int64_t cards_segment = 16;       // cards
  std::string value;                // value
  int64_t value_k = 10;             // value
  double value_beta = 1.0;          // value
  std::string corrector;            // correct
  std::string correct_toward;       // correct
  std::string ric;                  // ric
  std::string ric_targets;          // ric
  std::string ric_mode = "scores";  // ric
  // Append new fields here and in visit_fields.

  // Options from a JSON object (what the server receives): keys are the field names, with '-' or '_' (best_of or
  // best-of), values of the field's type (a string, an integer, a number). given, when not null, receives the names
  // set (for make_strategy's membership check). Throws kInvalidArgument for malformed JSON, a non-object, an unknown
  // key (listing the known ones) or a value of the wrong type (naming the key and the type).
  static StrategyOptions from_json(std::string_view json_text, std::vector<std::string>* given = nullptr);

  // Calls v(name, field, help, strategies) for every field; strategies: the ones it belongs to, "a|b".
  template <typename Visitor>
  void visit_fields(Visitor&& v) {
    v("models", models,
      "fusion: comma-separated model directories sharing a vocabulary, or LoRA adapter directories (train policy, "
      "train reward --method arm) on their base",
      "fusion");
    v("weights", weights, "fusion, steer: one weight per model / vector (any real numbers), or name=weight pairs",
      "fusion|steer");
    v("vectors", vectors, "steer: a steering-vector file (palign train steer)", "steer");
    v("statement", statement, "prompt: the user's preference statement", "prompt");
    v("history", history, "prompt: the user's labelled pairs (JSONL); liked responses are retrieved from them",
      "prompt");
    v("retrieve", retrieve, "prompt: most liked responses put before the prompt", "prompt");
    v("expert", expert, "proxy: the expert model (a model or adapter directory)", "proxy");
    v("antiexpert", antiexpert, "proxy: the anti-expert model (a model or adapter directory)", "proxy");
    v("alpha", alpha, "proxy: base + alpha * (expert - antiexpert)", "proxy");
    v("context", context, "contrast: the user's preference prompt, put before --prompt", "contrast");
    v("context-ids", context_ids, "contrast: the preference prompt as token ids", "contrast");
    v("lambda", lambda, "contrast: with + lambda * (with - without); steer: the vectors' scale", "contrast|steer");
    v("best-of", best_of, "best_of_n: samples per output, reranked by --reward", "best_of_n");
    v("reward", reward,
      "best_of_n, cd_block, cards: a reward directory (palign train reward); args: a sequence-classification reward "
      "model (bt, multi) or a linear reward over one",
      "best_of_n|cd_block|args|cards");
    v("user", user,
      "best_of_n, cd_block, args, cards: a user the personalized reward has seen; sample with a pdpo --adapter: the "
      "user whose learned tokens condition the policy (unknown: the generic user)",
      "best_of_n|cd_block|args|cards|sample");
    v("user-pairs", user_pairs, "best_of_n, cd_block, args, cards: a new user's labelled pairs",
      "best_of_n|cd_block|args|cards");
    v("cd-k", cd_k, "cd_block: candidate continuations per block", "cd_block");
    v("cd-block", cd_block, "cd_block: tokens per block", "cd_block");
    v("reward-model", reward_model, "args: the same as --reward (kept for older command lines)", "args");
    v("args-k", args_k, "args: candidate tokens per step (top-k of the policy)", "args");
    v("args-w", args_w, "args: reward weight w in log p + w * r", "args");
    v("cards-k", cards_k, "cards: candidate segments sampled per round, in one batch", "cards");
    v("cards-entropy", cards_entropy,
      "cards: a segment ends before a token whose next-token entropy (nats) exceeds this", "cards");
    v("cards-margin", cards_margin,
      "cards: a segment is accepted when the reward of the text with it is at least the text's before + this", "cards");
    v("cards-rounds", cards_rounds, "cards: rounds of candidates per segment before the best seen is kept", "cards");
    v("cards-segment", cards_segment, "cards: most tokens in a segment", "cards");
    v("value", value, "value: a prefix value model (palign train value)", "value");
    v("value-k", value_k, "value: candidate tokens per step (top-k of the policy)", "value");
    v("value-beta", value_beta, "value: beta in log p + beta * V(prefix + token)", "value");
    v("corrector", corrector, "correct: a corrector adapter (palign train corrector)", "correct");
    v("correct-toward", correct_toward,
      "correct: comma-separated dimensions to correct toward (default: the profile's two strongest; needs a corrector "
      "trained with --objectives)",
      "correct");
    v("ric", ric, "ric: a Rewards-in-Context adapter (palign train policy --method ric)", "ric");
    v("ric-targets", ric_targets,
      "ric: label=score pairs to ask for (default: the profile's weights mapped onto the training scores)", "ric");
    v("ric-mode", ric_mode,
      "ric: how weights become scores: scores (each label toward its own 10th/90th percentile) or direction (DPA: "
      "along the weights' unit direction)",
      "ric");
  }
};

}  // namespace palign::decoding
