#include "palign/users/prior_file.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "palign/base/error.h"
#include "palign/users/online_model.h"

namespace palign::users {

DimensionWeights read_prior_file(const std::filesystem::path& file, const std::vector<std::string>& names) {
  using nlohmann::json;
  std::ifstream in(file);
  PALIGN_CHECK(in.good(), ErrorCode::kNotFound, "[users.prior] no prior file ", file.string(),
               "; write one with `palign user prior`");
  DimensionWeights prior;
  try {
    const json j = json::parse(in);
    PALIGN_CHECK(j.is_object() && j.value("format", "") == "palign.prior", ErrorCode::kInvalidArgument,
                 "[users.prior] ", file.string(),
                 " is not a palign prior (\"format\": \"palign.prior\"); write one with `palign user prior`");
    prior.names = j.at("names").get<std::vector<std::string>>();
    prior.mean = j.at("mean").get<std::vector<double>>();
    prior.covariance = j.at("covariance").get<std::vector<double>>();
  } catch (const json::exception& e) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[users.prior] ", file.string(), " is not a valid prior: ", e.what());
  }
  PALIGN_CHECK(prior.names == names, ErrorCode::kInvalidArgument, "[users.prior] the prior in ", file.string(),
               " weighs other dimensions than the reward's; fit it with `palign user prior --reward` on the same "
               "reward");
  return gaussian_prior(prior.names, prior.mean, prior.covariance);
}

}  // namespace palign::users
