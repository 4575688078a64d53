// Does each rank of a Program fit in its device's memory? The estimate is
// schedule's (memory.hpp); device memory comes from the platform's device
// sheets, and for a sheet without a figure (local-cpu) from this machine,
// shared by the devices of a node.
#pragma once

#include <string>
#include <vector>

#include "plait/schedule/memory.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::simulator {

struct RankFit {
  int rank = 0;
  std::string device;           // sheet name
  schedule::RankMemory needed;  // estimate
  double available_bytes = 0;
};

// `optimizer_states_per_parameter` as schedule::estimate_memory (AdamW: 2).
std::vector<RankFit> memory_fit(const schedule::Program& program, const PlatformSpec& platform,
                                int optimizer_states_per_parameter = 0);

// Throws plait::Error ("memory: rank R needs ... but its <sheet> has ...") for
// the first rank that does not fit.
void check_memory_fits(const std::vector<RankFit>& fits);

}  // namespace plait::simulator
