// ProgressBar (see progress.h).
#include "palign/base/progress.h"

#include <unistd.h>

#include <cstdio>

namespace palign {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::hours(1)) {}

std::string ProgressBar::format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const auto total = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", static_cast<long>(total / 3600), static_cast<long>(total % 3600 / 60));
  else if (total >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", static_cast<long>(total / 60), static_cast<long>(total % 60));
  else
    std::snprintf(buf, sizeof buf, "%lds", static_cast<long>(total));
  return buf;
}

void ProgressBar::update(int64_t done, const std::string& status) {
  if (!enabled_) return;
  if (start_done_ < 0) start_done_ = done, start_ = std::chrono::steady_clock::now();
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.2 : 5.0) && done < total_) return;
  last_draw_ = now;
  draw(done, status, false);
}

void ProgressBar::finish(const std::string& status) {
  if (!enabled_) return;
  draw(total_, status, true);
}

void ProgressBar::draw(int64_t done, const std::string& status, bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t progressed = done - std::max<int64_t>(start_done_, 0);
  const double rate = elapsed > 0 ? progressed / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : -1;
  const int width = 24;
  const int filled = total_ > 0 ? static_cast<int>(width * std::min<double>(1.0, double(done) / total_)) : width;
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  std::fprintf(stderr, "%s%s [%s] %ld/%ld %s elapsed %s ETA %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               bar.c_str(), static_cast<long>(done), static_cast<long>(total_), status.c_str(),
               format_duration(elapsed).c_str(), final_line ? "0s" : format_duration(eta).c_str(),
               tty_ && !final_line ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace palign
