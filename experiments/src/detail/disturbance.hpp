// Other work on the machine, made on purpose (plait sweep --disturb): a
// process outside the sweep's tree spinning on one core for a stretch of the
// sweep, so that its runs and its calibration are seen judged disturbed and
// measured again.
#pragma once

#include <sys/types.h>

namespace plait::experiments::detail {

class Disturbance {
 public:
  // Spins from start_s to stop_s seconds after now; stopped early when this object goes.
  Disturbance(double start_s, double stop_s);
  ~Disturbance();
  Disturbance(const Disturbance&) = delete;
  Disturbance& operator=(const Disturbance&) = delete;

 private:
  pid_t spinner_ = -1;
};

}  // namespace plait::experiments::detail
