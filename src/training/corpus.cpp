// Reading text corpora in JSON Lines (see corpus.h).
#include "palign/training/corpus.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

namespace palign::training {

namespace fs = std::filesystem;

std::vector<std::string> read_corpus_texts(const fs::path& jsonl, const std::string& split, bool allow_empty) {
  std::ifstream in(jsonl);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[training.read_corpus_texts] cannot read ", jsonl.string(),
               "; build one with `palign data fortunes --out DIR`");
  std::vector<std::string> texts;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[training.read_corpus_texts] ", jsonl.string(), ":", line_no,
                   " is not valid JSON; each line must be {\"text\": ..., \"split\": ...}");
    }
    PALIGN_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), ErrorCode::kInvalidArgument,
                 "[training.read_corpus_texts] ", jsonl.string(), ":", line_no, " has no string \"text\" field");
    const std::string record_split =
        j.contains("split") && j["split"].is_string() ? j["split"].get<std::string>() : "train";
    if (split.empty() || record_split == split) texts.push_back(j["text"].get<std::string>());
  }
  PALIGN_CHECK(allow_empty || !texts.empty(), ErrorCode::kInvalidArgument, "[training.read_corpus_texts] ", jsonl.string(),
               " has no records", split.empty() ? std::string() : " with split \"" + split + "\"",
               "; check the file or pass another split");
  return texts;
}

}  // namespace palign::training
