// Where a trace's time went, per rank and profiler step: compute,
// communication and how much of it overlapped compute, memory copies, idle;
// the time ranks waited inside collectives for their last member, and who
// that was; the top kernels (docs/commands/breakdown.md).
//
// A rank with GPU tracks is broken down on them (as HTA does: kernels, memcpy,
// memset), a rank without on its host ops. The "all" row of each rank is
// HTA's temporal breakdown: over the span from its first event's start to its
// last one's end, idle = span - union of all events, compute = union of the
// compute events, non-compute = the rest of the union (communication and
// memory not under compute).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "plait/traces/trace.hpp"

namespace plait::traces {

struct RankBreakdown {
  int rank = 0;
  int step = -1;  // -1: the whole trace (HTA's temporal breakdown)
  double span_s = 0;  // the step's span on this rank, or first start to last end
  double compute_s = 0, communication_s = 0, overlap_s = 0;  // overlap: communication under compute
  double memory_s = 0, non_compute_s = 0, idle_s = 0;
  double collective_wait_s = 0;  // in collectives, for their last member to arrive
  int collectives = 0;
};

struct Straggler {
  int rank = 0;
  int last_arrivals = 0;   // collectives this rank was the last to reach
  double caused_wait_s = 0;  // the other members' waits for it there
};

struct KernelTime {
  std::string name, kind;
  std::int64_t count = 0;
  double total_s = 0;
};

struct Breakdown {
  std::vector<RankBreakdown> rows;   // per rank: each step, then the whole trace
  std::vector<Straggler> stragglers;  // most caused wait first
  std::vector<KernelTime> top;        // most time first (summed over ranks)
};

// Throws plait::Error on a trace without imported events (kinds).
Breakdown breakdown(const Trace& trace, int top_kernels = 10);
std::string format_breakdown(const Breakdown& breakdown);  // tables
void to_json(nlohmann::json& out, const Breakdown& breakdown);

}  // namespace plait::traces
