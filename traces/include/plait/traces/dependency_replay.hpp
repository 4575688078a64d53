// Replay of an imported trace on its own dependencies: every event keeps its
// measured duration (scaled by the what-if knobs) and its measured offset from
// each event it depends on (its track's previous event and its deps); the
// members of a collective start its transfer when the last one arrives. At
// the measured durations this reproduces the measured timeline; with knobs it
// answers "what if" (docs/commands/replay.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/traces/trace.hpp"

namespace plait::traces {

// One collective instance as the replay sees it.
struct CollectiveInstance {
  std::string name, group;
  std::int64_t bytes = 0;
  std::vector<int> ranks;       // its members
  double measured_transfer_s = 0;  // from the last member's arrival to the members' median end
};

struct DependencyReplayOptions {
  double compute_scale = 1;                // every compute event
  std::map<int, double> rank_compute_scale;  // and one rank's (e.g. a straggler at the others' speed)
  double bandwidth_scale = 1;  // collectives' and messages' bandwidth part
  double latency_scale = 1;    // collectives' latency part
  // Set: a collective's transfer time from this (e.g. a platform's links)
  // instead of its measured one; the bandwidth and latency scales then do not apply.
  std::function<double(const CollectiveInstance&)> price_collective;
};

struct StepTime {
  int step = 0;  // ProfilerStep#N; 0 on a trace without steps
  double measured_s = 0, replayed_s = 0;  // the slowest rank's span of the step
};

struct DependencyReplay {
  Trace replayed;  // the input with replayed start and end times
  std::vector<StepTime> steps;
  double measured_s = 0, replayed_s = 0;  // mean over steps
  double relative_error = 0;              // replayed / measured - 1
  std::int64_t events = 0, collectives = 0;
};

// Throws plait::Error when the dependencies form a cycle (naming an event on it).
DependencyReplay replay_dependencies(const Trace& trace, const DependencyReplayOptions& options = {});

// Times an unscheduled trace (every start 0, end its duration: Chakra's nodes)
// as soon as its dependencies allow.
Trace schedule_as_soon_as_possible(Trace trace);

void to_json(nlohmann::json& out, const DependencyReplay& replay);

}  // namespace plait::traces
