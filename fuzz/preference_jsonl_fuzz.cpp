// Fuzzes the preference JSON Lines reader (scoring::read_preference_jsonl: what every trainer, reward and
// `palign serve --prior` fitting reads) on a file holding the input.
#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/scoring/preference_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = palign::fuzz::scratch_dir() / "pairs.jsonl";
  palign::fuzz::write_file(path, palign::fuzz::as_text(data, size));
  try {
    (void)palign::scoring::read_preference_jsonl(path);
  } catch (const palign::Error&) {
  }
  return 0;
}
