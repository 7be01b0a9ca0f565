// parse_ids (see strings.h).
#include "palign/base/strings.h"

#include <cerrno>
#include <cstdlib>

#include "palign/base/error.h"

namespace palign {

std::vector<int64_t> parse_ids(const std::string& text, const std::string& what) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  PALIGN_CHECK(text.find_first_not_of(" ,\t") != std::string::npos, ErrorCode::kInvalidArgument, "[parse_ids] ", what,
               " is empty; give comma-separated token ids like 1,2,3");
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    PALIGN_CHECK(!item.empty(), ErrorCode::kInvalidArgument, "[parse_ids] ", what, " has an empty item in '", text,
                 "'; give comma-separated token ids like 1,2,3");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    PALIGN_CHECK(end && *end == '\0' && errno == 0, ErrorCode::kInvalidArgument, "[parse_ids] ", what, ": '", item,
                 "' is not an integer token id");
    ids.push_back(v);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace palign
