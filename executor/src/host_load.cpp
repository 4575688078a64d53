// HostWindow: /proc/stat's busy and steal time around a stretch of a run,
// less the CPU time of the run's own ranks on that host.
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "detail/host_load.hpp"

namespace plait::executor::detail {
namespace {

struct CpuCounters {
  double busy_s = -1, steal_s = -1;  // -1: not readable
};

// The "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal
// (guest time is inside user). Busy is what a process or the kernel ran.
CpuCounters read_cpu_counters() {
  std::ifstream stat("/proc/stat");
  std::string label;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(stat >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu")
    return {};
  const double tick = 1.0 / double(::sysconf(_SC_CLK_TCK));
  return {(user + nice + system + irq + softirq) * tick, steal * tick};
}

std::string host_name() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

HostWindow::HostWindow(World& world) : world_(world) {
  on_first_host_ = world.broadcast(host_name()) == host_name();
  world.barrier();
  start_cpu_ = cpu_seconds();
  start_wall_ = now_seconds();
  if (world.rank() == 0) {
    const CpuCounters counters = read_cpu_counters();
    start_busy_s_ = counters.busy_s;
    start_steal_s_ = counters.steal_s;
  }
}

std::optional<HostLoad> HostWindow::end() {
  const double own_cpu = cpu_seconds() - start_cpu_;
  // Rank 0 reads the counters once every rank is done: its own CPU time is inside.
  const auto own = world_.gather({on_first_host_ ? own_cpu : 0.0});
  if (world_.rank() != 0 || start_busy_s_ < 0) return std::nullopt;
  const CpuCounters counters = read_cpu_counters();
  if (counters.busy_s < 0) return std::nullopt;
  HostLoad load;
  load.wall_s = now_seconds() - start_wall_;
  for (const auto& rank : own) load.own_cpu_s += rank.at(0);
  load.foreign_cpu_s = counters.busy_s - start_busy_s_ - load.own_cpu_s;
  load.steal_s = counters.steal_s - start_steal_s_;
  load.cores = int(::sysconf(_SC_NPROCESSORS_ONLN));
  return load;
}

}  // namespace plait::executor::detail
