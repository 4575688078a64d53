// HostMonitor: /proc/stat against /proc/<pid>/stat of this process's tree.
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "detail/host_monitor.hpp"

namespace plait::experiments::detail {
namespace {

double tick_s() { return 1.0 / double(::sysconf(_SC_CLK_TCK)); }

double host_busy_s() {
  std::ifstream stat("/proc/stat");
  std::string label;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  if (!(stat >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq) || label != "cpu") return -1;
  return (user + nice + system + irq + softirq) * tick_s();
}

// Every process's parent and CPU time (its own and its reaped children's).
struct ProcessTimes {
  int parent = 0;
  double cpu_s = 0;
};

std::map<int, ProcessTimes> process_times() {
  std::map<int, ProcessTimes> processes;
  DIR* proc = ::opendir("/proc");
  if (!proc) return processes;
  while (const dirent* entry = ::readdir(proc)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream file("/proc/" + std::string(entry->d_name) + "/stat");
    std::string line;
    if (!std::getline(file, line)) continue;  // gone meanwhile
    // pid (comm) state ppid ... field 14 utime, 15 stime, 16 cutime, 17 cstime;
    // comm may hold spaces and parentheses: read after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string state;
    ProcessTimes times;
    fields >> state >> times.parent;
    double value = 0, utime = 0, stime = 0, cutime = 0, cstime = 0;
    for (int field = 5; field <= 13; ++field) fields >> value;
    fields >> utime >> stime >> cutime >> cstime;
    if (!fields) continue;
    times.cpu_s = (utime + stime + cutime + cstime) * tick_s();
    processes[pid] = times;
  }
  ::closedir(proc);
  return processes;
}

double tree_cpu_s(int root) {
  const std::map<int, ProcessTimes> processes = process_times();
  std::map<int, std::vector<int>> children;
  for (const auto& [pid, times] : processes) children[times.parent].push_back(pid);
  double total = 0;
  std::vector<int> pending = {root};
  while (!pending.empty()) {
    const int pid = pending.back();
    pending.pop_back();
    if (const auto found = processes.find(pid); found != processes.end()) total += found->second.cpu_s;
    for (int child : children[pid]) pending.push_back(child);
  }
  return total;
}

}  // namespace

HostMonitor::HostMonitor() {
  if (host_busy_s() < 0) return;
  thread_ = std::thread([this] {
    while (!over_) {
      sample();
      const auto next = start_ + std::chrono::seconds(long(samples_.size()));
      while (!over_ && std::chrono::steady_clock::now() < next) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
}

HostMonitor::~HostMonitor() { stop(); }

void HostMonitor::sample() {
  HostSample sample;
  sample.busy_s = host_busy_s();
  sample.tree_cpu_s = tree_cpu_s(int(::getpid()));
  sample.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::lock_guard lock(mutex_);
  samples_.push_back(sample);
}

std::vector<HostSample> HostMonitor::stop() {
  if (thread_.joinable()) {
    over_ = true;
    thread_.join();
    sample();
  }
  std::lock_guard lock(mutex_);
  return samples_;
}

BusiestWindow busiest_window(const std::vector<HostSample>& samples, double window_s) {
  BusiestWindow busiest;
  if (samples.size() < 2) return busiest;
  const double origin = samples.front().time_s;
  const double span = samples.back().time_s - origin;
  window_s = std::min(window_s, span);
  if (window_s < 1) return busiest;  // /proc/stat's 10 ms ticks cannot tell
  // Each sample starts a stretch ending at the first sample window_s later.
  for (std::size_t first = 0, last = 0; first < samples.size(); ++first) {
    last = std::max(last, first + 1);
    while (last < samples.size() && samples[last].time_s - samples[first].time_s < window_s) ++last;
    if (last >= samples.size()) break;
    const double wall = samples[last].time_s - samples[first].time_s;
    const double foreign = (samples[last].busy_s - samples[first].busy_s) -
                           (samples[last].tree_cpu_s - samples[first].tree_cpu_s);
    if (foreign / wall > busiest.foreign_cores) busiest = {foreign / wall, samples[first].time_s - origin};
  }
  return busiest;
}

}  // namespace plait::experiments::detail
