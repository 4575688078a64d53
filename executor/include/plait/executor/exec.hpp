// The executor's driver: what `plait-exec program.json` does on every rank.
// Times the Program, times the serial baseline, compares them, records a
// trace. Independent of MPI: it talks to the ranks through a World.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plait/executor/world.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/interpret.hpp"

namespace plait::executor {

struct ExecOptions {
  int steps = 3;   // timed steps (forward + loss + backward each)
  int warmup = 1;  // untimed steps before them
  std::string device = "cpu";
  int threads = 1;                // intra-op threads per rank
  bool measure_serial = true;     // time the serial baseline on rank 0
  bool check_serial = false;      // compare output and gradients with the serial baseline
  std::string trace_path;         // non-empty: record one more step and write its trace
  bool keep_step_graphs = true;   // false: adjoint steps recompute their forward (less memory)
  // Before and after the timed steps, every rank at once times a plain
  // forward step of each of its blocks in turn, in a loop (ExecReport::
  // speed_probe_s, the mean of the two): the speed this machine has during
  // the run, which a sweep compares with the calibration's. Rank 0 probes the
  // same way, alone, around the serial baseline (serial_speed_probe_s).
  bool speed_probe = false;
  bool fail_by_signal = false;    // fault injection: fail_rank dies by SIGKILL instead of throwing
  int fail_rank = -1;             // fault injection (tests): this rank throws after warmup
};

// The machine during a stretch of a run, from /proc/stat on rank 0's host:
// the CPU time that neither the run's ranks on that host nor idle took
// (another process's, the kernel's), and the time the hypervisor stole.
// A sweep judges from it whether the run met other work (experiments' steadiness).
struct HostLoad {
  double wall_s = 0;
  double own_cpu_s = 0;      // the run's ranks on that host
  double foreign_cpu_s = 0;  // busy time that was not theirs (ticks of 10 ms: +-0.02 s a window)
  double steal_s = 0;
  int cores = 0;
};

// Results as rank 0 sees them (other ranks hold only their own timings).
struct ExecReport {
  int ranks = 1;
  std::string kind;
  int layers = 0;
  std::string device;
  int steps = 0;
  double time_per_step_s = 0;
  // CPU time per step of the busiest rank (MPI's busy-waiting counts as busy):
  // below time_per_step_s when the ranks shared their cores with other work.
  double cpu_time_per_step_s = 0;
  std::optional<double> serial_time_per_step_s;
  std::optional<double> serial_cpu_time_per_step_s;
  std::optional<double> speedup;  // serial / program
  std::optional<double> max_rel_err_output;
  std::optional<double> max_rel_err_grad;  // max over blocks of ||g - g_serial|| / ||g_serial||
  double loss = 0;
  std::optional<double> serial_loss;
  schedule::RunResult run;  // residual norms of the last step
  // Per rank: peak resident memory (the process's high-water mark on CPU)
  // after the Program's steps, before the serial baseline.
  std::vector<double> peak_memory_bytes;
  std::int64_t graph_misses = 0;  // adjoint steps whose kept graph was missing (recomputed)
  std::vector<double> speed_probe_s;  // per rank, seconds of one forward step (with speed_probe)
  std::optional<double> serial_speed_probe_s;  // rank 0's, around the serial baseline (with speed_probe)
  // The run's steadiness, as recorded: each timed step (the slowest rank's
  // time for it), each rank's probe before and after the steps (with
  // speed_probe), and the host's load during the steps and the serial baseline.
  std::vector<double> step_times_s;
  std::vector<double> speed_probe_before_s, speed_probe_after_s;
  std::optional<HostLoad> steps_host_load, serial_host_load;
  std::vector<double> output;                    // u at the last point (fp64)
  std::map<int, std::vector<double>> gradients;  // per block, gathered with check_serial only
};

// Thrown on every rank at once when the ranks agree that the input is bad:
// rank `reporter` prints it, every rank exits with code 1, nothing hangs.
class AgreedError : public Error {
 public:
  AgreedError(const Error& error, int reporter_rank)
      : Error(error.where(), error.why()), reporter(reporter_rank) {}
  int reporter;
};

// Every rank loads and validates the file; a failure anywhere is an AgreedError.
schedule::Program load_program_on_all(World& world, const std::string& path);
// Program ranks vs world size, model and device support, options, trace path.
void check_run(World& world, const schedule::Program& program, const ExecOptions& options);

// Runs warmup + steps of `program`; collective (every rank of `world` calls it).
ExecReport execute(World& world, const schedule::Program& program, const ExecOptions& options);

// Relative 2-norm error ||value - reference|| / ||reference|| (absolute if the reference is 0).
double relative_error(const std::vector<double>& value, const std::vector<double>& reference);

// {"ranks", "time_per_step_s", "serial_time_per_step_s", "speedup",
//  "max_rel_err_output", "max_rel_err_grad", ...}: one line, null where not measured.
std::string report_json(const ExecReport& report);
std::string report_text(const ExecReport& report);

}  // namespace plait::executor
