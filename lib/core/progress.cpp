#include "tmsplan/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "tmsplan/log.hpp"

namespace tmsplan {

Progress::Progress(std::string label, std::int64_t total) : label_(std::move(label)), total_(total > 0 ? total : 1) {
  tty_ = isatty(STDERR_FILENO) != 0;
  const auto lvl = log::level();
  enabled_ = lvl == log::Level::Verbose || (lvl == log::Level::Normal && tty_);
  draw(false);
}

Progress::~Progress() {
  done_ = total_;
  draw(true);
}

Progress& Progress::operator++() {
  set(done_ + 1);
  return *this;
}

void Progress::set(std::int64_t done) {
  done_ = done;
  draw(false);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const int percent = static_cast<int>(100 * (done_ < total_ ? done_ : total_) / total_);
  if (!tty_) {
    // Not a terminal (verbose into a log file): one line at start and one at the end.
    if (final)
      std::fprintf(stderr, "  %s: done\n", label_.c_str());
    else if (last_percent_ < 0)
      std::fprintf(stderr, "  %s...\n", label_.c_str());
    last_percent_ = percent;
    return;
  }
  if (percent == last_percent_ && !final) return;
  last_percent_ = percent;
  const int width = 30;
  const int filled = percent * width / 100;
  std::fprintf(stderr, "\r  %-28s [%.*s%*s] %3d%%", label_.c_str(), filled, "##############################",
               width - filled, "", percent);
  if (final) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace tmsplan
