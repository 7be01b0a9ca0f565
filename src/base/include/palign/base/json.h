// JSON helpers shared by every module that writes reports (nlohmann::json).
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>

namespace palign {

// x as a JSON number, or null when x is NaN or infinite (JSON has no such numbers; nlohmann would write null
// anyway, but silently and only when dumping).
inline nlohmann::json finite_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

}  // namespace palign
