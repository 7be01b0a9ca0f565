// Small string helpers for parsing flag values and list-valued options.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace palign {

// The items of a separated list ("a,b,,c" -> {"a", "b", "c"}): empty items are dropped, items are not trimmed.
inline std::vector<std::string> split_list(std::string_view text, char separator = ',') {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(separator, begin);
    if (end == std::string_view::npos) end = text.size();
    if (end > begin) out.emplace_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

// The items joined by separator ({"a", "b"} -> "a, b").
inline std::string join_list(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (&item != &items.front()) out += separator;
    out += item;
  }
  return out;
}

// Token ids from "1,2,3" (spaces allowed). Throws kInvalidArgument naming what (a flag: "--prompt-ids") and the bad
// item.
std::vector<int64_t> parse_ids(const std::string& text, const std::string& what);

}  // namespace palign
