// read_json_file and write_json_file (see json.h).
#include "palign/base/json.h"

#include <fstream>

#include "palign/base/error.h"

namespace palign {

nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view where) {
  std::ifstream in(path);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[", where, "] cannot read ", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[", where, "] ", path.string(), " is not valid JSON: ", e.what());
  }
}

void write_json_file(const std::filesystem::path& path, const nlohmann::json& j, std::string_view where) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << j.dump(2) << "\n";
  PALIGN_CHECK(out.good(), ErrorCode::kIo, "[", where, "] cannot write ", path.string(),
               "; check the folder's permissions and free space");
}

}  // namespace palign
