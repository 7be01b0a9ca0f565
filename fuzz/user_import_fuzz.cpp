// Fuzzes user exports (ProfileStore::import_user, `palign user import`): the input is the export's JSON text, imported
// (replacing) into one SQLite store in a scratch file, then exported again and deleted.
#include <memory>
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/users/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto store = palign::users::ProfileStore::open(palign::fuzz::scratch_dir() / "store.db");
  const auto j = nlohmann::json::parse(palign::fuzz::as_text(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const auto state = store->import_user(j, /*replace=*/true);
    (void)store->export_user(state.user_id);
    store->delete_user(state.user_id);
  } catch (const palign::Error&) {
  }
  return 0;
}
