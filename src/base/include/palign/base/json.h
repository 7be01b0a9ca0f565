// JSON helpers shared by every module that reads or writes JSON files and reports (nlohmann::json).
#pragma once

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

namespace palign {

// x as a JSON number, or null when x is NaN or infinite (JSON has no such numbers; nlohmann would write null
// anyway, but silently and only when dumping).
inline nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

// The JSON in a file. where names the caller in messages ("training.reward"). Throws kNotFound when the file cannot
// be read, kInvalidArgument when it is not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view where);
// Writes j (indented by 2, with a final newline). Throws kIo when it cannot.
void write_json_file(const std::filesystem::path& path, const nlohmann::json& j, std::string_view where);

}  // namespace palign
