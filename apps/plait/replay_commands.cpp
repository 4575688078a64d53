// plait replay: the simulator driven by a measured trace's op durations.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/simulator/replay.hpp"
#include "plait/traces/trace.hpp"

namespace plait::cli {

void add_replay_commands(CLI::App& app) {
  struct ReplayArgs {
    std::string trace, program, platform = "local";
    simulator::ReplayOptions options;
    bool json = false;
  };
  auto args = std::make_shared<ReplayArgs>();
  auto* replay = app.add_subcommand(
      "replay", "simulate a measured run with its own op durations (what-if: device, bandwidth, latency)");
  replay->add_option("trace", args->trace, "measured trace (plait run ... --trace)")->required();
  replay->add_option("--program", args->program, "the Program the trace ran")->required();
  replay->add_option("--platform", args->platform, "platform JSON or a shipped name")->capture_default_str();
  replay->add_option("--compute-scale", args->options.compute_scale,
                     "multiply every compute duration (0.5: a device twice as fast)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  replay->add_option("--bandwidth-scale", args->options.bandwidth_scale, "multiply every link's bandwidth")
      ->check(CLI::PositiveNumber)->capture_default_str();
  replay->add_option("--latency-scale", args->options.latency_scale, "multiply every link's latency")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  replay->add_flag("--json", args->json, "print {measured_time_s, replayed_time_s, relative_error}");
  replay->callback([args] {
    const schedule::Program program = schedule::load_program(args->program);
    const traces::Trace trace = traces::load_trace(args->trace);
    const auto platform = simulator::load_platform(simulator::find_platform(args->platform));
    const simulator::Replay result = simulator::replay(program, trace, platform, args->options);
    if (args->json) {
      std::cout << nlohmann::json(result).dump(2) << '\n';
      return;
    }
    std::printf("measured makespan  %.6g s\nreplayed makespan  %.6g s\nrelative error     %+.2f%%\n"
                "ops priced         %lld from the trace, %lld by their cost key's median\n",
                result.measured_time_s, result.replayed_time_s, result.relative_error * 100,
                static_cast<long long>(result.ops_from_trace), static_cast<long long>(result.ops_without_duration));
  });
}

}  // namespace plait::cli
