// SimGrid's one engine a process: its configuration and the claim on it.
#pragma once

#include <memory>

#include "plait/simulator/simulator.hpp"

namespace simgrid::s4u {
class Engine;
}

namespace plait::simulator::detail {

// Starts this process's SimGrid engine configured by `options`. Throws
// plait::Error on an unknown network model (SimGrid would exit the process), a
// setting not of the form name:value, or when this process has simulated
// already (SimGrid allows one engine a process).
std::unique_ptr<simgrid::s4u::Engine> start_engine(const SimulateOptions& options);

}  // namespace plait::simulator::detail
