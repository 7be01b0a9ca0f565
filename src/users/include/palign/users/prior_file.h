// A population prior on disk (`palign user prior` writes it; `palign user create --prior` and `palign serve --prior`
// read it): {"format": "palign.prior", "names", "mean", "covariance", "scorer"}.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "palign/users/dimension_weights.h"

namespace palign::users {

// Reads a prior over `names` (the scorer's dimensions, in order). Throws kNotFound (no file), kInvalidArgument (not
// a palign prior, other dimensions than names, a covariance that is not positive definite), naming the file.
DimensionWeights read_prior_file(const std::filesystem::path& file, const std::vector<std::string>& names);

}  // namespace palign::users
