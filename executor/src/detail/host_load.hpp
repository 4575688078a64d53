// What a run records of the machine beside it (ExecReport::HostLoad), so that
// a sweep can tell a steady run from one that met other work.
#pragma once

#include "plait/executor/exec.hpp"
#include "plait/executor/world.hpp"

namespace plait::executor::detail {

// A stretch of a run on rank 0's host: its /proc/stat counters at the start,
// then HostWindow::end (collective) turns them into a HostLoad: the CPU time
// that neither this run's ranks on that host nor idle took. Without /proc/stat
// (not Linux) the window is empty.
class HostWindow {
 public:
  // Collective: every rank notes its CPU time; rank 0 reads /proc/stat.
  explicit HostWindow(World& world);
  // Collective; the load on rank 0, std::nullopt elsewhere or without /proc/stat.
  std::optional<HostLoad> end();

 private:
  World& world_;
  double start_wall_ = 0, start_cpu_ = 0;
  double start_busy_s_ = -1, start_steal_s_ = -1;
  bool on_first_host_ = true;
};

}  // namespace plait::executor::detail
