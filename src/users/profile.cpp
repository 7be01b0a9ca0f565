// UserProfile's directory format (see profile.h).
#include "palign/users/profile.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"

namespace palign::users {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFile = "profile.json";
constexpr const char* kFormat = "palign.user_profile";

std::string field_string(const json& j, const char* key, const fs::path& file) {
  if (!j.contains(key) || j[key].is_null()) return "";
  PALIGN_CHECK(j[key].is_string(), ErrorCode::kInvalidArgument, "[users.profile] ", file.string(), ": \"", key,
               "\" must be a string");
  return j[key].get<std::string>();
}

}  // namespace

UserProfile UserProfile::load(const fs::path& dir) {
  const fs::path file = dir / kFile;
  PALIGN_CHECK(fs::is_regular_file(file), ErrorCode::kNotFound, "[users.profile] ", file.string(),
               " does not exist; make a profile with palign profile create --out ", dir.string());
  std::ifstream in(file);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.profile] ", file.string(), " is not valid JSON: ", e.what());
  }
  PALIGN_CHECK(j.is_object() && j.contains("format") && j["format"].is_string() && j["format"] == kFormat,
               ErrorCode::kInvalidArgument, "[users.profile] ", file.string(),
               " is not a user profile (\"format\" must be \"", kFormat, "\")");
  UserProfile p;
  PALIGN_CHECK(j.contains("version") && j["version"].is_number_integer(), ErrorCode::kInvalidArgument,
               "[users.profile] ", file.string(), ": \"version\" must be an integer");
  p.version = j["version"].get<int64_t>();
  p.user_id = field_string(j, "user_id", file);
  p.statement = field_string(j, "statement", file);
  for (auto [key, path] : {std::pair{"reward", &p.reward}, std::pair{"history", &p.history}}) {
    const std::string s = field_string(j, key, file);
    if (!s.empty()) *path = fs::path(s).is_absolute() ? fs::path(s) : dir / s;
  }
  if (j.contains("weights") && !j["weights"].is_null()) {
    PALIGN_CHECK(j["weights"].is_object(), ErrorCode::kInvalidArgument, "[users.profile] ", file.string(),
                 ": \"weights\" must be an object {\"dimension\": number}");
    for (const auto& [name, w] : j["weights"].items()) {
      PALIGN_CHECK(w.is_number() && std::isfinite(w.get<double>()), ErrorCode::kInvalidArgument, "[users.profile] ",
                   file.string(), ": the weight of \"", name, "\" is not a finite number");
      p.weights[name] = w.get<double>();
    }
  }
  return p;
}

void UserProfile::save(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  PALIGN_CHECK(fs::is_directory(dir), ErrorCode::kIo, "[users.profile] cannot create ", dir.string(), ": ",
               ec.message());
  auto stored = [&](const fs::path& p) {
    if (p.empty()) return json(nullptr);
    const fs::path rel = p.lexically_proximate(dir);
    const bool inside = !rel.empty() && *rel.begin() != "..";
    return json((inside && !rel.is_absolute() ? rel : p).string());
  };
  json j = {{"format", kFormat},      {"version", version + 1},   {"user_id", user_id},        {"weights", weights},
            {"statement", statement}, {"reward", stored(reward)}, {"history", stored(history)}};
  const fs::path tmp = dir / (std::string(kFile) + ".tmp");
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    PALIGN_CHECK(out.good(), ErrorCode::kIo, "[users.profile] cannot write ", tmp.string());
  }
  fs::rename(tmp, dir / kFile, ec);
  PALIGN_CHECK(!ec, ErrorCode::kIo, "[users.profile] cannot write ", (dir / kFile).string(), ": ", ec.message());
  ++version;
}

}  // namespace palign::users
