// palign tokenize / detokenize: run a model directory's tokenizer.json.
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "palign/base/error.h"
#include "palign/base/strings.h"
#include "palign/runtime/tokenizer.h"
#include "palign/training/corpus.h"

namespace palign::cli {

using namespace palign::runtime;
namespace fs = std::filesystem;

namespace {
struct TokenizeFlags {
  std::string model, text, jsonl;
  bool special = false;
  bool text_given = false;
};

void print_ids(const std::vector<int32_t>& ids) {
  print_json_line(nlohmann::json{{"ids", ids}}.dump());
}

int run_tokenize(const TokenizeFlags& f) {
  PALIGN_CHECK(f.text_given || !f.jsonl.empty(), ErrorCode::kInvalidArgument,
               "[cli.tokenize] give --text TEXT or --jsonl FILE");
  auto tok = Tokenizer::from_dir(resolve_model_dir(f.model));
  if (f.text_given) {
    print_ids(tok.encode(f.text, f.special));
    return 0;
  }
  for (const auto& text : training::read_corpus_texts(f.jsonl, /*split=*/"", /*allow_empty=*/true))
    print_ids(tok.encode(text, f.special));
  return 0;
}

struct DetokenizeFlags {
  std::string model, ids;
  bool skip_special = false, json = false;
};

int run_detokenize(const DetokenizeFlags& f) {
  auto tok = Tokenizer::from_dir(resolve_model_dir(f.model));
  std::vector<int32_t> ids;
  for (int64_t id : parse_ids(f.ids, "--ids")) {
    PALIGN_CHECK(id >= 0 && id < tok.vocab_size(), ErrorCode::kInvalidArgument, "[cli.detokenize] token id ", id,
                 " is outside the vocabulary [0, ", tok.vocab_size(), ")");
    ids.push_back(static_cast<int32_t>(id));
  }
  const std::string text = tok.decode(ids, f.skip_special);
  if (f.json) {
    print_json_line(nlohmann::json{{"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::cout << text << std::endl;
  }
  return 0;
}
}  // namespace

Command add_tokenize(CLI::App& root) {
  auto flags = std::make_shared<TokenizeFlags>();
  CLI::App* app = root.add_subcommand("tokenize", "Print {\"ids\": [...]} for text (one line per input)");
  app->add_option("--model", flags->model, "Model directory (a tokenizer.json alone is enough)");
  auto* t = app->add_option_function<std::string>(
      "--text", [flags](const std::string& v) { flags->text = v, flags->text_given = true; }, "Text to tokenize");
  auto* j = app->add_option("--jsonl", flags->jsonl, "File of {\"text\": ...} lines");
  t->excludes(j);
  app->add_flag("--special", flags->special, "Add the post-processor's special tokens (e.g. BOS)");
  return {app, [flags] { return run_tokenize(*flags); }};
}

Command add_detokenize(CLI::App& root) {
  auto flags = std::make_shared<DetokenizeFlags>();
  CLI::App* app = root.add_subcommand("detokenize", "Print the text of token ids");
  app->add_option("--model", flags->model, "Model directory (a tokenizer.json alone is enough)");
  app->add_option("--ids", flags->ids, "Comma-separated token ids")->required();
  app->add_flag("--skip-special", flags->skip_special, "Drop special tokens");
  app->add_flag("--json", flags->json, "Print {\"text\": ...}");
  return {app, [flags] { return run_detokenize(*flags); }};
}

}  // namespace palign::cli
