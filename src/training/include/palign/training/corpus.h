// Text corpora in JSON Lines ({"text": ..., "split": ...} per line), as `palign data fortunes` writes them and as the
// trainers, the perplexity evaluation and `palign tokenize --jsonl` read them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace palign::training {

// The "text" of each record of a JSON Lines corpus whose "split" equals split (a record without "split" counts as
// "train"; an empty split takes every record), in file order. Throws kNotFound for a missing file and
// kInvalidArgument, naming file:line, for a line that is not a JSON object with a string "text", or when no record
// matches (unless allow_empty).
std::vector<std::string> read_corpus_texts(const std::filesystem::path& jsonl, const std::string& split = "train",
                                           bool allow_empty = false);

}  // namespace palign::training
