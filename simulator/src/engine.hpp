// SimGrid's one engine a process: its configuration and the claim on it.
#pragma once

#include <string>
#include <vector>

#include "plait/simulator/simulator.hpp"

namespace plait::simulator::detail {

// SimGrid's command-line style configuration of `options`; the strings live
// until the next call. Throws plait::Error on an unknown network model (SimGrid
// would exit the process) or a setting not of the form name:value.
std::vector<std::string>& engine_arguments(const SimulateOptions& options);

// Throws plait::Error when this process has simulated already: SimGrid allows one engine a process.
void claim_engine();

}  // namespace plait::simulator::detail
