// Fuzzes tokenizer.json loading (Tokenizer::from_file: the model, added tokens, normalizer, pre-tokenizer,
// post-processor and decoder); a tokenizer it accepts then encodes and decodes a fixed text.
#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = palign::fuzz::scratch_dir() / "tokenizer.json";
  palign::fuzz::write_file(path, palign::fuzz::as_text(data, size));
  try {
    const auto tok = palign::runtime::Tokenizer::from_file(path);
    const auto ids = tok.encode("Hello world! 123 <s> déjà vu\n\tx", /*add_special=*/true);
    (void)tok.decode(ids, /*skip_special=*/false);
    (void)tok.decode(ids, /*skip_special=*/true);
  } catch (const palign::Error&) {
  }
  return 0;
}
