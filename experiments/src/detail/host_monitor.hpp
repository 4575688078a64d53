// The machine's load beside a long child process (the calibration): once a
// second, the CPU time busy on the host (/proc/stat) and the CPU time of this
// process's tree (itself and every descendant, reaped ones included); what
// is busy outside the tree is other work.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace plait::experiments::detail {

struct HostSample {
  double time_s = 0;     // since the monitor started
  double busy_s = 0;     // the host's busy CPU time (/proc/stat)
  double tree_cpu_s = 0; // this process's tree's CPU time
};

class HostMonitor {
 public:
  HostMonitor();  // starts sampling (nothing on a host without /proc/stat)
  ~HostMonitor();
  HostMonitor(const HostMonitor&) = delete;
  HostMonitor& operator=(const HostMonitor&) = delete;
  std::vector<HostSample> stop();  // the samples, the last one taken now

 private:
  void sample();
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<bool> over_{false};
  std::mutex mutex_;
  std::vector<HostSample> samples_;
  std::thread thread_;
};

// The heaviest other work in any stretch of `window_s` (the whole span when
// shorter): its CPU time outside the tree over the stretch's wall time, in
// cores, and where the stretch began. {0, 0} over less than a second.
struct BusiestWindow {
  double foreign_cores = 0;
  double start_s = 0;
};
BusiestWindow busiest_window(const std::vector<HostSample>& samples, double window_s);

}  // namespace plait::experiments::detail
