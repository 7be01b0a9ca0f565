// Flag parsing helpers and default-model resolution for the palign command.
#include "common.h"

#include <cstdio>
#include <cstdlib>

#include "palign/base/error.h"

namespace palign::cli {

namespace fs = std::filesystem;

std::vector<int64_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  PALIGN_CHECK(text.find_first_not_of(" ,\t") != std::string::npos, ErrorCode::kInvalidArgument, "[cli] ", flag,
               " is empty; give comma-separated token ids like 1,2,3");
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    PALIGN_CHECK(!item.empty(), ErrorCode::kInvalidArgument, "[cli] ", flag, " has an empty item in '", text,
                 "'; give comma-separated token ids like 1,2,3");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    PALIGN_CHECK(end && *end == '\0' && errno == 0, ErrorCode::kInvalidArgument, "[cli] ", flag, ": '", item,
                 "' is not an integer token id");
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
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
