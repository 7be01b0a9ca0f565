// Fuzzes feedback events as JSON (users::event_from_json: the store's events, a user export's events); an event it
// accepts must write back to JSON and read back.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "palign/base/error.h"
#include "palign/users/feedback.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(palign::fuzz::as_text(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  palign::users::FeedbackEvent event;
  try {
    event = palign::users::event_from_json(j);
  } catch (const palign::Error&) {
    return 0;
  }
  (void)palign::users::event_from_json(palign::users::event_to_json(event));
  return 0;
}
