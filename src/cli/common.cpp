// Flag parsing helpers and default-model resolution for the palign command.
#include "common.h"

#include <cerrno>
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

namespace {

// A FLOAT flag's value: NaN and infinities parse as numbers, and decode or train garbage.
std::string finite_number(std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return {};  // not a number: CLI11's conversion says so
  if (!std::isfinite(x)) return "must be a finite number, got " + text;
  return {};
}

// An INT or UINT flag's value: strtoll saturates out-of-range text (99999999999999999999 became 2^63 - 1) and
// strtoull wraps a negative one.
std::string integer_in_range(std::string& text, bool is_unsigned) {
  if (text.empty()) return {};
  errno = 0;
  char* end = nullptr;
  if (is_unsigned) {
    (void)std::strtoull(text.c_str(), &end, 0);
    if (text.find('-') != std::string::npos && end == text.c_str() + text.size())
      return "must be a non-negative integer, got " + text;
  } else {
    (void)std::strtoll(text.c_str(), &end, 0);
  }
  if (end != text.c_str() + text.size()) return {};  // not an integer: CLI11's conversion says so
  if (errno == ERANGE) return "is out of range for an integer, got " + text;
  return {};
}

}  // namespace

void check_number_flags(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    if (option->get_type_size_max() == 0) continue;  // a flag without a value
    const std::string type = option->get_type_name();
    if (type.rfind("FLOAT", 0) == 0) {
      option->check(CLI::Validator(finite_number, "", "finite"));
    } else if (type.rfind("UINT", 0) == 0) {
      option->check(CLI::Validator([](std::string& text) { return integer_in_range(text, true); }, "", "in range"));
    } else if (type.rfind("INT", 0) == 0) {
      option->check(CLI::Validator([](std::string& text) { return integer_in_range(text, false); }, "", "in range"));
    }
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) check_number_flags(*sub);
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
