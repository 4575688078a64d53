// plait replay: a measured trace's durations replayed, with what-if knobs:
// plait's own traces through SimGrid with their Program, imported traces
// (plait import) on their own dependencies.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/collective_closed_form.hpp"
#include "plait/simulator/replay.hpp"
#include "plait/traces/dependency_replay.hpp"
#include "plait/traces/trace.hpp"

namespace plait::cli {
namespace {

bool is_imported(const traces::Trace& trace) {
  return std::any_of(trace.events.begin(), trace.events.end(), [](const traces::Event& e) { return !e.kind.empty(); });
}

struct ReplayArgs {
  std::string trace, program, platform = "local", output;
  simulator::ReplayOptions options;
  std::vector<std::string> rank_compute_scale;
  bool platform_given = false, json = false;
};

void replay_imported(const ReplayArgs& args, const traces::Trace& trace) {
  traces::DependencyReplayOptions options;
  options.compute_scale = args.options.compute_scale;
  options.bandwidth_scale = args.options.bandwidth_scale;
  options.latency_scale = args.options.latency_scale;
  for (const std::string& item : args.rank_compute_scale) {  // RANK=SCALE
    int rank = -1;
    double scale = -1;
    char rest = 0;
    if (std::sscanf(item.c_str(), "%d=%lf%c", &rank, &scale, &rest) != 2 || !(scale >= 0)) {
      throw Error("--rank-compute-scale", "expected RANK=SCALE (e.g. 3=0.8), got \"" + item + "\"");
    }
    if (rank < 0 || rank >= trace.ranks) {
      throw Error("--rank-compute-scale", "rank " + std::to_string(rank) + " outside the trace's 0.." + std::to_string(trace.ranks - 1));
    }
    options.rank_compute_scale[rank] = scale;
  }
  if (args.platform_given) {
    options.price_collective =
        simulator::collective_pricer(simulator::load_platform(simulator::find_platform(args.platform)), trace.ranks);
  }
  const traces::DependencyReplay result = traces::replay_dependencies(trace, options);
  if (!args.output.empty()) traces::save_trace(result.replayed.events.empty() ? trace : result.replayed, args.output);
  if (args.json) {
    std::cout << nlohmann::json(result).dump(2) << '\n';
    return;
  }
  // A trace without times (a generated Chakra collective) has no error to give.
  const auto change = [](double measured, double replayed) {
    char text[32] = "n/a";
    if (measured > 0) std::snprintf(text, sizeof text, "%+.2f%%", (replayed / measured - 1) * 100);
    return std::string(text);
  };
  std::printf("%-8s %14s %14s %9s\n", "step", "measured (s)", "replayed (s)", "change");
  for (const traces::StepTime& step : result.steps) {
    std::printf("%-8d %14.6g %14.6g %9s\n", step.step, step.measured_s, step.replayed_s,
                change(step.measured_s, step.replayed_s).c_str());
  }
  std::printf("%-8s %14.6g %14.6g %9s\n%lld events, %lld collectives replayed on the trace's dependencies\n", "mean",
              result.measured_s, result.replayed_s, change(result.measured_s, result.replayed_s).c_str(),
              static_cast<long long>(result.events), static_cast<long long>(result.collectives));
}

}  // namespace

void add_replay_commands(CLI::App& app) {
  auto args = std::make_shared<ReplayArgs>();
  auto* replay = app.add_subcommand(
      "replay", "replay a measured run with its own durations (what-if: device, bandwidth, latency, platform)");
  replay->add_option("trace", args->trace, "measured trace (plait run ... --trace, or plait import)")->required();
  replay->add_option("--program", args->program, "the Program the trace ran (plait's own traces)");
  replay->add_option("--platform", args->platform,
                     "platform JSON or a shipped name (imported traces: collectives re-priced on its links)")
      ->capture_default_str();
  replay->add_option("--compute-scale", args->options.compute_scale,
                     "multiply every compute duration (0.5: a device twice as fast)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  replay->add_option("--bandwidth-scale", args->options.bandwidth_scale, "multiply every link's bandwidth")
      ->check(CLI::PositiveNumber)->capture_default_str();
  replay->add_option("--latency-scale", args->options.latency_scale, "multiply every link's latency")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  replay->add_option("--rank-compute-scale", args->rank_compute_scale,
                     "imported traces: RANK=SCALE multiplies one rank's compute (repeat for more ranks)")
      ->delimiter(',');
  replay->add_option("-o,--output", args->output, "imported traces: write the replayed trace");
  replay->add_flag("--json", args->json, "machine-readable result");
  replay->callback([args, replay] {
    args->platform_given = replay->count("--platform") > 0;
    const traces::Trace trace = traces::load_trace(args->trace);
    if (args->program.empty()) {
      if (!is_imported(trace)) {
        throw Error(args->trace, "a trace of plait's own run replays with its Program: add --program");
      }
      replay_imported(*args, trace);
      return;
    }
    if (is_imported(trace)) {
      throw Error(args->trace, "an imported trace replays on its own dependencies: drop --program");
    }
    if (!args->rank_compute_scale.empty() || !args->output.empty()) {
      throw Error("plait replay", "--rank-compute-scale and --output are for imported traces (without --program)");
    }
    const schedule::Program program = schedule::load_program(args->program);
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
