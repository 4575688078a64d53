// Replay: the simulator driven by a measured trace's own op durations instead
// of a cost model. Without knobs it should reproduce the measured makespan:
// what is left is the error of the dependency and message model, apart from
// op costs. The knobs answer "what if": compute_scale 0.5 is a device twice as
// fast, bandwidth_scale 10 a network with ten times the bandwidth.
#pragma once

#include <cstdint>
#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "plait/simulator/simulator.hpp"

namespace plait::simulator {

struct ReplayOptions {
  double compute_scale = 1;    // multiplies every measured compute duration
  double bandwidth_scale = 1;  // multiplies every link's bandwidth
  double latency_scale = 1;    // multiplies every link's latency
};

struct Replay {
  double measured_time_s = 0;  // the trace's makespan
  double replayed_time_s = 0;  // the simulated makespan
  double relative_error = 0;   // replayed / measured - 1
  std::int64_t ops_from_trace = 0;        // compute ops priced from the trace
  std::int64_t ops_without_duration = 0;  // not in the trace: priced by the median of their cost key
};

// Prices each compute op of `program` by the trace's event of the same rank,
// section, repetition and op index: its duration plus the local time since the
// rank's previous compute op that was not spent in a receive or collective
// (interpreter overhead, posting sends), so gaps in the measured timeline are
// kept. Ops the trace lacks (e.g. the serial counterpart's) are priced by the
// median of their cost key in the trace. Throws plait::Error when the trace
// does not fit the program (ranks, sections, op indices).
std::shared_ptr<const costmodels::OpPricer> make_trace_pricer(const schedule::Program& program,
                                                              const traces::Trace& trace, double compute_scale = 1);

// The platform with every link's bandwidth and latency scaled (JSON platforms only).
PlatformSpec with_link_scales(PlatformSpec platform, double bandwidth_scale, double latency_scale);

// Simulates `program` on `platform` with the trace's durations (one simulation
// per process, as simulate()).
Replay replay(const schedule::Program& program, const traces::Trace& trace, const PlatformSpec& platform,
              const ReplayOptions& options = {}, SimulateOptions simulate_options = {});

// {"measured_time_s", "replayed_time_s", "relative_error", "ops_from_trace", "ops_without_duration"}
void to_json(nlohmann::json& out, const Replay& replay);

}  // namespace plait::simulator
