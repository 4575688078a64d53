#include "engine.hpp"

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include <simgrid/s4u/Engine.hpp>

#include "plait/schedule/error.hpp"

namespace plait::simulator::detail {
namespace {

std::atomic<bool> engine_started{false};

void check_network_model(const std::string& model) {
  static const std::set<std::string> known = {"CM02", "LV08", "Constant", "SMPI", "IB"};
  if (known.count(model) == 0)
    throw Error("network model", "unknown model \"" + model + "\" (expected CM02, LV08, Constant, SMPI or IB)");
}

// SimGrid's command-line style configuration; the strings outlive the engine.
std::vector<std::string>& engine_arguments(const SimulateOptions& options) {
  check_network_model(options.network_model);
  static std::vector<std::string> arguments;
  arguments = {"plait-simulate",
               "--cfg=network/model:" + options.network_model,
               std::string("--cfg=network/crosstraffic:") + (options.cross_traffic ? "1" : "0"),
               "--cfg=contexts/stack-size:512",
               // No TCP window: NVLink, InfiniBand and shared memory have none, and
               // SimGrid's default (4 MiB) caps a link of 8 us latency at 262 GB/s.
               "--cfg=network/TCP-gamma:0",
               "--log=root.thres:warning",
               // SimGrid reports deadlocks itself; plait reports them as errors.
               "--log=ker_engine.app:file:/dev/null"};
  for (const std::string& setting : options.simgrid_config) {
    if (setting.find(':') == std::string::npos)
      throw Error("simgrid config", "\"" + setting + "\" is not of the form name:value");
    if (setting.starts_with("network/model:")) check_network_model(setting.substr(setting.find(':') + 1));
    arguments.push_back("--cfg=" + setting);
  }
  return arguments;
}

}  // namespace

std::unique_ptr<simgrid::s4u::Engine> start_engine(const SimulateOptions& options) {
  std::vector<std::string>& arguments = engine_arguments(options);
  if (engine_started.exchange(true))
    throw Error("simulator", "SimGrid allows one simulation per process; run another process for the next one");
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  int argc = static_cast<int>(argv.size());
  return std::make_unique<simgrid::s4u::Engine>(&argc, argv.data());
}

}  // namespace plait::simulator::detail
