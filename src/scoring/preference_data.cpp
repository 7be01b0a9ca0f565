// read_preference_jsonl (see preference_data.h).
#include "palign/scoring/preference_data.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "palign/base/error.h"

namespace palign::scoring {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<PreferenceRecord> read_preference_jsonl(const fs::path& path) {
  std::ifstream in(path);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[scoring.preference_data] cannot read ", path.string(),
               "; pass a JSON Lines file of {\"prompt\", \"chosen\", \"rejected\"} records");
  std::vector<PreferenceRecord> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      PALIGN_THROW(ErrorCode::kInvalidArgument, "[scoring.preference_data] ", path.string(), " line ", n,
                   " is not valid JSON");
    }
    PreferenceRecord r;
    for (auto [key, field] : {std::pair{"prompt", &r.prompt}, {"chosen", &r.chosen}, {"rejected", &r.rejected}}) {
      PALIGN_CHECK(j.is_object() && j.contains(key) && j[key].is_string(), ErrorCode::kInvalidArgument,
                   "[scoring.preference_data] ", path.string(), " line ", n, " has no string \"", key,
                   "\"; each line needs \"prompt\", \"chosen\" and \"rejected\"");
      *field = j[key].get<std::string>();
    }
    if (j.contains("user_id") && !j["user_id"].is_null())
      r.user_id = j["user_id"].is_string() ? j["user_id"].get<std::string>() : j["user_id"].dump();
    if (j.contains("dimension") && j["dimension"].is_string()) r.dimension = j["dimension"].get<std::string>();
    if (j.contains("chosen_score") && j["chosen_score"].is_number()) r.chosen_score = j["chosen_score"].get<double>();
    if (j.contains("rejected_score") && j["rejected_score"].is_number())
      r.rejected_score = j["rejected_score"].get<double>();
    out.push_back(std::move(r));
  }
  PALIGN_CHECK(!out.empty(), ErrorCode::kInvalidArgument, "[scoring.preference_data] ", path.string(),
               " holds no preference records");
  return out;
}

}  // namespace palign::scoring
