// Builds a PlatformSpec as SimGrid zones (s4u NetZone API), or loads its XML.
#pragma once

#include <string>
#include <vector>

#include <simgrid/s4u/Engine.hpp>
#include <simgrid/s4u/Host.hpp>

#include "plait/simulator/platform.hpp"

namespace plait::simulator::detail {

struct BuiltPlatform {
  std::vector<simgrid::s4u::Host*> devices;  // by device index
  std::vector<DeviceSpec> device_specs;      // by device index
  std::vector<int> node_of_device;           // machine each device is in
};

// Call once, before any actor exists. XML hosts are the devices in SimGrid's
// host order; their properties "plait_device" and "plait_profile" say what
// prices them.
BuiltPlatform build_platform(simgrid::s4u::Engine& engine, const PlatformSpec& spec);

}  // namespace plait::simulator::detail
