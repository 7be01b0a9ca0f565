// A one-line progress bar on stderr for long runs (training, bench): done/total, a caller-supplied status, rate and
// ETA. Redraws in place on a terminal; on a pipe or file it prints a plain line at most every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace palign {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  // Updates to done units with a status text such as "loss 3.21 val 3.40 5120 tok/s".
  void update(int64_t done, const std::string& status = {});
  // Ends the line.
  void finish(const std::string& status = {});
  static std::string format_duration(double seconds);  // "1h02m", "4m05s", "12s"

 private:
  void draw(int64_t done, const std::string& status, bool final_line);
  std::string label_;
  int64_t total_;
  int64_t start_done_ = -1;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace palign
