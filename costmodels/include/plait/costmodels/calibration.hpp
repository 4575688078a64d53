// Calibration: run plait-bench (alone, then two at once for contention) and
// `plait-exec pingpong` under mpirun, or read their JSON, and fit a Profile.
// `check` also measures held-out shapes and reports the fitted model's error on them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/message_fit.hpp"
#include "plait/costmodels/profile.hpp"

namespace plait::costmodels {

struct CalibrationProgress {
  std::string stage;  // "alone", "contended", "in-run", "gradient all-reduce", "pingpong"
  int done = 0;       // benchmark repetitions finished in this stage
  int total = 0;
  double elapsed_s = 0;  // since calibration started
};

struct CalibrationOptions {
  std::vector<schedule::ModelDesc> shapes;        // measured and fitted (empty with
                                                  // bench_json: every shape in it)
  std::vector<schedule::ModelDesc> check_shapes;  // held out: measured only with `check`
  bool check = false;
  bool contended = true;
  int contended_processes = 0;  // plait-bench copies at once; 0: one per core (at least 2)
  bool network = true;
  // Also time every op inside short real MGRIT runs of each fitted shape on 1
  // and on 2 ranks (plait-exec --trace --speed-probe) and keep those durations
  // as the ops' `alone` and `contended` timings: what ops take in a run (its
  // working set, a co-running rank, MPI progress polling), which a benchmark
  // loop does not reproduce. The runs' speed probes become the profile's
  // speed_references. They also time the executor's gradient all-reduce over
  // 2 replicas (the profile network's gradient_allreduce and its pass).
  bool in_run = true;
  std::string bench_binary;  // plait-bench
  std::string exec_binary;   // plait-exec (pingpong subcommand)
  std::string mpirun = "mpirun";
  // The flags after `mpirun -n P` (plait passes those of `plait run`, so that
  // calibration and measurement place ranks alike: --oversubscribe turns Open
  // MPI's core binding off). Default: --allow-run-as-root --oversubscribe as root.
  std::function<std::vector<std::string>(int ranks)> mpirun_flags;
  std::string bench_json;     // non-empty: read these plait-bench results instead of running
  std::string pingpong_json;  // non-empty: read these ping-pong results instead of running
  std::string device = "cpu";
  int threads = 1;
  int repetitions = 5;
  double min_time_s = 0.03;  // Google Benchmark --benchmark_min_time per repetition
  std::function<void(const CalibrationProgress&)> on_progress;
};

// The model's error on one held-out measurement.
struct CheckRow {
  std::string key;
  schedule::ModelDesc shape;
  double measured_s = 0;
  double predicted_s = 0;
  double relative_error = 0;
};

struct CheckReport {
  std::vector<CheckRow> rows;
  double median_relative_error = 0;
  double max_relative_error = 0;
};

struct CalibrationResult {
  Profile profile;
  std::vector<MessageFitError> network_errors;  // the message model at every measured size
  std::optional<CheckReport> check;
  std::vector<BenchFailure> failures;  // benchmarks that failed; the rest went on
  double seconds = 0;                  // wall time of the calibration
};

// Shapes measured by default (fitted) and held out for --check.
std::vector<schedule::ModelDesc> default_calibration_shapes();
std::vector<schedule::ModelDesc> default_check_shapes();

// Throws plait::Error when a child fails to start or exits non-zero, or its
// output is invalid; benchmarks that report errors become `failures`.
CalibrationResult calibrate(const CalibrationOptions& options);

// Error of `profile`'s fitted model (its fits, not its measurements) on `held_out`.
CheckReport check_profile_model(const Profile& profile,
                                const std::vector<OpMeasurement>& held_out);

// `name` in the directory of the running executable if it exists there,
// else `name` itself (looked up on PATH when started).
std::string sibling_executable(const std::string& name);

// cpu for one-thread CPU runs (see BenchClock), wall otherwise.
BenchClock calibration_clock(const std::string& device, int threads);

// Machine facts for the profile: CPU model and cores from /proc/cpuinfo, UTC date.
MachineInfo describe_machine(const std::string& device, int threads,
                             const std::string& torch_version);

}  // namespace plait::costmodels
