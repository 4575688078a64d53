// Simulated all-reduce times on a platform, to hold against measured ones
// (`plait allreduce-check`): a gradient all-reduce's buffer pass and messages
// as the simulator runs them inside a training step.
#pragma once

#include <cstdint>
#include <vector>

#include "plait/simulator/platform.hpp"
#include "plait/simulator/simulator.hpp"

namespace plait::simulator {

struct AllreduceCase {
  int devices = 2;  // on the platform's first devices (ranks placed as the platform says)
  std::int64_t bytes = 0;
};

// Seconds of each case, run one after another from a barrier (its time: from
// the barrier to the last device's end). One simulation: once a process, as
// simulate(). Throws plait::Error when a case asks for more devices than the
// platform has or fewer than 2.
std::vector<double> simulate_allreduces(const PlatformSpec& platform, const std::vector<AllreduceCase>& cases,
                                        const SimulateOptions& options = {});

}  // namespace plait::simulator
