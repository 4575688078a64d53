#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "detail/progress.hpp"
#include "plait/experiments/sweep.hpp"

namespace plait::experiments::detail {

Progress::Progress(bool enabled, std::size_t total)
    : enabled_(enabled && total > 0), total_(total), start_(std::chrono::steady_clock::now()) {}

void Progress::step(const std::string& what) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  ++finished_;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? finished_ / elapsed : 0;
  const double eta = rate > 0 ? (total_ - finished_) / rate : 0;
  std::fprintf(stderr, "\r\033[K[%zu/%zu] %.2f/min, ETA %.0f s  %s", finished_, total_, rate * 60, eta,
               what.substr(0, 60).c_str());
  std::fflush(stderr);
}

void Progress::add(std::size_t more) {
  std::lock_guard lock(mutex_);
  total_ += more;
}

void Progress::done() {
  if (enabled_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace plait::experiments::detail

namespace plait::experiments {

bool progress_on_terminal() {
  const char* ci = std::getenv("CI");
  if (ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0)) return false;
  return ::isatty(2) == 1;
}

}  // namespace plait::experiments
