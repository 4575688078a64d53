// plait simulate: predict a Program's step time on a platform (SimGrid).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/memory_fit.hpp"
#include "plait/simulator/simulator.hpp"

namespace plait::cli {
namespace {

struct SimulateCommand {
  std::string program_path, platform, profile, trace, allreduce = "auto", network_model = "CM02";
  std::vector<std::string> simgrid_config;
  int nodes = 0;
  bool grow_nodes = false;
  std::int64_t eager_limit_bytes = simulator::SimulateOptions{}.eager_limit_bytes;
  double compute_scale = 1;
  std::vector<double> rank_compute_scales;
  bool json = false, cross_traffic = false, profile_links_off = false, ignore_memory = false;
  std::string optimizer = "auto";
};

std::string seconds_text(double seconds) {
  char text[32];
  if (seconds >= 1) std::snprintf(text, sizeof text, "%.4g s", seconds);
  else if (seconds >= 1e-3) std::snprintf(text, sizeof text, "%.4g ms", seconds * 1e3);
  else std::snprintf(text, sizeof text, "%.4g us", seconds * 1e6);
  return text;
}

double share(double part, double total) { return total > 0 ? 100 * part / total : 0; }

void print_text(const simulator::Prediction& p, const SimulateCommand& command) {
  std::printf("platform          %s (%d ranks, %s, allreduce %s)\n", p.platform.c_str(), p.ranks,
              command.network_model.c_str(), command.allreduce.c_str());
  if (!command.profile.empty())
    std::printf("pricing           profile %s%s\n", command.profile.c_str(),
                command.profile_links_off ? "" : " (and its message model within nodes, if any)");
  std::printf("predicted step    %s\n", seconds_text(p.predicted_time_s).c_str());
  std::printf("serial, 1 device  %s\n", seconds_text(p.serial_predicted_time_s).c_str());
  std::printf("speedup           %.3fx\n", p.speedup);
  const auto& path = p.critical_path;
  std::printf("critical path     %s: compute %s, messages %s (%d), %lld block steps (dry run %g), %zu rank stretches\n",
              seconds_text(path.length_s).c_str(), seconds_text(path.compute_s).c_str(),
              seconds_text(path.communication_s).c_str(), path.messages, static_cast<long long>(path.block_steps),
              path.dry_run_block_steps, path.segments.size());
  std::printf("simulated         %lld ops, %lld messages in %.3f s\n", static_cast<long long>(p.ops),
              static_cast<long long>(p.messages), p.wall_s);
  // Ranks with a gradient stream (--dp-overlap): its all-reduces, beside the three shares that make the step.
  const bool overlapped = std::any_of(p.rank_reports.begin(), p.rank_reports.end(),
                                      [](const simulator::RankReport& r) { return r.overlapped_communication_s > 0; });
  std::printf("%6s  %-16s %7s %7s %7s%s\n", "rank", "host", "busy", "comm", "idle",
              overlapped ? "  overlapped comm" : "");
  const std::size_t shown = std::min<std::size_t>(p.rank_reports.size(), 16);
  for (std::size_t i = 0; i < p.rank_reports.size(); ++i) {
    // Large runs: the first 8 and last 8 ranks.
    if (p.rank_reports.size() > shown && i == shown / 2)
      std::printf("%6s  (%zu ranks not shown; --json lists all)\n", "...", p.rank_reports.size() - shown);
    if (p.rank_reports.size() > shown && i >= shown / 2 && i < p.rank_reports.size() - shown / 2) continue;
    const auto& r = p.rank_reports[i];
    const double total = r.busy_s + r.communication_s + r.idle_s;
    std::printf("%6d  %-16s %6.1f%% %6.1f%% %6.1f%%", r.rank, r.host.c_str(), share(r.busy_s, total),
                share(r.communication_s, total), share(r.idle_s, total));
    if (overlapped) std::printf("  %15.1f%%", share(r.overlapped_communication_s, total));
    std::printf("\n");
  }
}

void run_simulate(const SimulateCommand& command) {
  const schedule::Program program = schedule::load_program(command.program_path);
  simulator::PlatformSpec platform = simulator::load_platform(simulator::find_platform(command.platform));
  if (command.nodes > 0) platform = simulator::with_nodes(platform, command.nodes);
  if (command.grow_nodes) platform = simulator::grown_to_hold(platform, program.ranks);
  if (!command.ignore_memory)
    simulator::check_memory_fits(
        simulator::memory_fit(program, platform, optimizer_states(program, command.optimizer)));
  simulator::SimulateOptions options;
  options.network_model = command.network_model;
  options.cross_traffic = command.cross_traffic;
  options.allreduce = simulator::parse_allreduce_algorithm(command.allreduce);
  options.simgrid_config = command.simgrid_config;
  options.eager_limit_bytes = command.eager_limit_bytes;
  options.rank_compute_scales = command.rank_compute_scales;
  if (!command.profile.empty() && !command.profile_links_off) {
    // The profile's measured message model replaces the intra-node link's
    // alpha-beta, and its gradient pass the platform's.
    const costmodels::Profile profile = costmodels::load_profile(command.profile);
    if (profile.network) options.intra_node_messages = profile.network->model;
    if (profile.network && profile.network->gradient_pass_bytes_per_s > 0)
      platform.allreduce_pass_bytes_per_s = profile.network->gradient_pass_bytes_per_s;
  }
  std::unique_ptr<simulator::TraceWriter> trace;
  if (!command.trace.empty()) {
    trace = std::make_unique<simulator::TraceWriter>(command.trace);
    options.listeners.push_back(trace.get());
  }
  const simulator::Prediction prediction =
      simulator::simulate(program, platform,
                          simulator::scaled_pricers(simulator::default_pricers(command.profile), command.compute_scale),
                          options);
  if (command.json) {
    std::cout << nlohmann::json(prediction).dump(2) << '\n';
  } else {
    print_text(prediction, command);
  }
}

}  // namespace

void add_simulator_commands(CLI::App& app) {
  auto command = std::make_shared<SimulateCommand>();
  auto* sub = app.add_subcommand("simulate", "predict a Program's training step on a platform (SimGrid)");
  sub->add_option("program", command->program_path, "Program JSON (plait schedule -o ...)")->required();
  sub->add_option("--platform", command->platform,
                   "platform JSON or SimGrid XML file, or a shipped platform name (local, h100x32, ...)")
      ->required();
  sub->add_option("--profile", command->profile,
                  "measured profile pricing every device (default: the analytic model on each device's sheet)");
  sub->add_option("--compute-scale", command->compute_scale,
                  "multiply every compute op's price (0.5: devices twice as fast)")
      ->capture_default_str();
  sub->add_option("--rank-compute-scale", command->rank_compute_scales,
                  "one factor per rank, comma-separated, multiplying that rank's compute ops on top of "
                  "--compute-scale (ranks on cores of different speeds; rank 0's also prices the serial step)")
      ->delimiter(',');
  sub->add_flag("--no-profile-messages", command->profile_links_off,
                "keep the platform's intra-node link figures even when the profile has a message model");
  sub->add_option("--trace", command->trace, "write the predicted trace (plait.trace JSON) here");
  sub->add_flag("--json", command->json, "print the prediction as JSON");
  sub->add_flag("--ignore-memory", command->ignore_memory,
                "simulate even when a rank's estimated memory exceeds its device's");
  add_optimizer_option(*sub, command->optimizer);
  sub->add_option("--allreduce", command->allreduce,
                  "allreduce algorithm (auto: recursive doubling up to the eager limit, ring above)")
      ->check(CLI::IsMember({"auto", "ring", "recursive-doubling"}))
      ->capture_default_str();
  sub->add_option("--eager-limit", command->eager_limit_bytes,
                  "largest eager message in bytes; larger ones flow once received (rendezvous); -1: all eager")
      ->capture_default_str();
  sub->add_option("--nodes", command->nodes, "resize a star platform to this many nodes");
  sub->add_flag("--grow-nodes", command->grow_nodes,
                "a star cluster (several nodes) grows to as many nodes as the Program's ranks need");
  sub->add_option("--network-model", command->network_model, "SimGrid network model")->capture_default_str();
  sub->add_flag("--crosstraffic", command->cross_traffic, "model TCP cross-traffic (acks) on the reverse path");
  sub->add_option("--cfg", command->simgrid_config, "extra SimGrid setting name:value (repeatable)");
  sub->callback([command] { run_simulate(*command); });
}

}  // namespace plait::cli
