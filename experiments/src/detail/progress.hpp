// Progress of a sweep on stderr: done/total, rate and ETA, rewritten in place.
// Silent when disabled (stderr not a terminal, or CI).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

namespace plait::experiments::detail {

class Progress {
 public:
  Progress(bool enabled, std::size_t total);
  void step(const std::string& what);  // one unit of work finished
  void add(std::size_t more);          // more work than planned (runs measured again)
  void done();

 private:
  bool enabled_;
  std::size_t total_, finished_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
};

}  // namespace plait::experiments::detail
