// The in-run timings of a calibration (CalibrationOptions::in_run): per fitted
// shape, traced steps of a 16-layer, 2-level MGRIT Program on 1 and on 2 ranks
// of plait-exec, whose op durations replace the benchmarked ones; their speed
// probes become the shape's speed reference, the 2-rank runs give its idle
// slowdown, and the 1-rank runs time the serial step.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels::detail {

struct InRunSetup {
  std::string exec_binary;  // plait-exec
  std::string device;
  int threads = 1;
  std::function<std::vector<std::string>(int ranks)> mpirun;  // `mpirun -n ranks <flags>`
  std::function<void(int done, int total)> on_progress;
};

// One traced run of plait-exec: `program` on `ranks` ranks (started as the
// setup says) with `options` after it, plus --device, --threads and --trace.
// Its last line of output (the report, with --json) and the trace's events;
// throws plait::Error naming `what` when the run fails.
struct TracedRun {
  std::string last_line;
  std::vector<traces::Event> events;
};
TracedRun run_exec_traced(const InRunSetup& setup, const std::string& program, int ranks,
                          std::vector<std::string> options, const std::string& what);

// A shape's serial step (plait-exec's serial baseline) at its alone speed reference.
using SerialStep = std::pair<schedule::ModelDesc, double>;

struct InRunTimings {
  std::vector<SpeedReference> references;  // one per shape
  std::vector<SerialStep> serial_steps;
};

// Replaces the alone and contended timings of `ops` at `shapes` with their
// durations in the runs. Throws plait::Error when a run fails.
InRunTimings measure_in_run(const InRunSetup& setup, const std::vector<schedule::ModelDesc>& shapes,
                            std::vector<OpMeasurement>& ops);

// Sets each measured shape's serial_factor in the profile's speed references:
// its serial step over the profile's price of the serial Program, on the block
// steps (the executor runs all blocks in one autograd graph, which costs more
// than its blocks' steps one at a time in a run).
void set_serial_factors(Profile& profile, const std::vector<SerialStep>& serial_steps);

}  // namespace plait::costmodels::detail
