// Other work on the machine, made on purpose (plait sweep --disturb): one
// thread spinning on a core for a stretch of the sweep, so that its runs can
// be seen judged disturbed and measured again.
#pragma once

#include <atomic>
#include <thread>

namespace plait::experiments::detail {

class Disturbance {
 public:
  // Spins from start_s to stop_s seconds after now (and no longer than this object lives).
  Disturbance(double start_s, double stop_s);
  ~Disturbance();
  Disturbance(const Disturbance&) = delete;
  Disturbance& operator=(const Disturbance&) = delete;

 private:
  std::atomic<bool> over_{false};
  std::thread thread_;
};

}  // namespace plait::experiments::detail
