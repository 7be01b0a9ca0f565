// Fuzzes tokenization of arbitrary bytes with real tokenizers: models/default's (palign's own BPE) and the Llama 3
// fixture's (byte-level BPE, special tokens). encode may refuse text that is not UTF-8 (palign::Error), and
// decode(encode(x)) of any text it takes must succeed.
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/tokenizer.h"

namespace {

const std::vector<std::unique_ptr<palign::runtime::Tokenizer>>& tokenizers() {
  static const auto all = [] {
    std::vector<std::unique_ptr<palign::runtime::Tokenizer>> t;
    const auto root = palign::fuzz::source_dir();
    t.push_back(std::make_unique<palign::runtime::Tokenizer>(
        palign::runtime::Tokenizer::from_dir(root / "models" / "default")));
    t.push_back(std::make_unique<palign::runtime::Tokenizer>(
        palign::runtime::Tokenizer::from_dir(root / "tests" / "data" / "hf" / "models" / "llama")));
    return t;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto text = palign::fuzz::as_text(data, size);
  for (const auto& tok : tokenizers()) {
    std::vector<int32_t> ids;
    try {
      ids = tok->encode(text, /*add_special=*/true);
    } catch (const palign::Error&) {
      continue;
    }
    // The ids encode gave must decode: an error here escapes and is a finding.
    (void)tok->decode(ids, /*skip_special=*/false);
    (void)tok->decode(ids, /*skip_special=*/true);
    (void)tok->encode_tokens(text);
  }
  return 0;
}
