// Wall-clock timing for reports and progress: a steady clock and seconds elapsed since a time point.
#pragma once

#include <chrono>

namespace palign {

using Clock = std::chrono::steady_clock;

// Seconds from t0 to now, as a double.
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace palign
