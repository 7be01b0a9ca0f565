// Fuzzes a user's profile directory (UserProfile::load, `--user-profile DIR`): the input is DIR/profile.json.
#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/users/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = palign::fuzz::scratch_dir() / "profile";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;
  palign::fuzz::write_file(dir / "profile.json", palign::fuzz::as_text(data, size));
  try {
    (void)palign::users::UserProfile::load(dir);
  } catch (const palign::Error&) {
  }
  return 0;
}
