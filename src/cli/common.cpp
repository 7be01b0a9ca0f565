// Flag parsing helpers and default-model resolution for the palign command.
#include "common.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "palign/base/error.h"

namespace palign::cli {

namespace fs = std::filesystem;

CLI::Validator finite_above(double lo, bool inclusive) {
  std::ostringstream text;
  text << (inclusive ? ">= " : "> ") << lo;
  const std::string bound = text.str();
  return CLI::Validator(
      [lo, inclusive, bound](std::string& text) -> std::string {
        double x = 0;
        size_t used = 0;
        try {
          x = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != text.size() || !std::isfinite(x) || x < lo || (!inclusive && x == lo))
          return "must be a finite number " + bound + ", got " + text;
        return "";
      },
      "NUMBER " + bound);
}

fs::path resolve_model_dir(const std::string& flag_value) {
  if (!flag_value.empty()) return fs::path(flag_value);
  if (const char* env = std::getenv("PALIGN_MODEL"); env && *env) return fs::path(env);
  const fs::path shipped = fs::path(PALIGN_SOURCE_DIR) / "models" / "default";
  PALIGN_CHECK(fs::exists(shipped / "config.json"), ErrorCode::kNotFound,
               "[cli] no --model given and no default model at ", shipped.string(),
               "; pass --model DIR (a Hugging Face model directory) or set PALIGN_MODEL");
  return shipped;
}

void print_json_line(const std::string& json_text) {
  std::fwrite(json_text.data(), 1, json_text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace palign::cli
