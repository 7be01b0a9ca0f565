// Fuzzes population prior files (users::read_prior_file, `palign serve --prior`, `palign user create --prior`) over a
// fixed scorer's dimensions.
#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/users/prior_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = palign::fuzz::scratch_dir() / "palign.prior";
  palign::fuzz::write_file(path, palign::fuzz::as_text(data, size));
  try {
    (void)palign::users::read_prior_file(path, {"helpful", "concise"});
  } catch (const palign::Error&) {
  }
  return 0;
}
