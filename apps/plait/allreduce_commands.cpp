// plait allreduce-check: simulated gradient all-reduces against measured ones
// (nccl-tests CSV), optionally fitting the ring model's figures first.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "plait/costmodels/allreduce_fit.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/allreduce_times.hpp"

namespace plait::cli {
namespace {

struct AllreduceCheckCommand {
  std::string platform;
  std::vector<std::string> measured;  // G=FILE
  std::vector<int> fit_devices;
  std::int64_t from_bytes = std::int64_t{16} << 20;
};

costmodels::AllreduceMeasurements load_measured(const std::string& argument) {
  const std::size_t equals = argument.find('=');
  int devices = 0;
  try {
    devices = equals == std::string::npos ? 0 : std::stoi(argument.substr(0, equals));
  } catch (const std::exception&) {
  }
  if (devices < 2) throw Error("--measured", "\"" + argument + "\" is not DEVICES=FILE (e.g. 8=a100_8gpu_allreduce.csv)");
  return costmodels::load_allreduce_csv(argument.substr(equals + 1), devices);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

void run_check(const AllreduceCheckCommand& command) {
  const auto fitted_on = [&](int devices) {
    return std::find(command.fit_devices.begin(), command.fit_devices.end(), devices) != command.fit_devices.end();
  };
  std::vector<costmodels::AllreduceMeasurements> sets;
  for (const std::string& argument : command.measured) sets.push_back(load_measured(argument));
  simulator::PlatformSpec platform = simulator::load_platform(simulator::find_platform(command.platform));
  if (!command.fit_devices.empty()) {
    std::vector<costmodels::AllreduceMeasurements> fitted;
    for (const auto& set : sets)
      if (fitted_on(set.devices)) fitted.push_back(set);
    const costmodels::RingAllreduceFit fit = costmodels::fit_ring_allreduce(fitted, command.from_bytes);
    const auto& m = fit.model;
    std::printf("fit on %d samples: step latency %.3g us (+-%.1f%%), link %.4g GB/s (+-%.1f%%), pass %.4g GB/s (+-%.1f%%)\n",
                fit.samples, m.step_latency_s * 1e6, 100 * fit.relative_uncertainty[0], m.link_bytes_per_s / 1e9,
                100 * fit.relative_uncertainty[1], m.pass_bytes_per_s / 1e9, 100 * fit.relative_uncertainty[2]);
    std::printf("platform: \"link\": {\"latency_s\": %.4g, \"bandwidth_bytes_per_s\": %.4g}, "
                "\"allreduce_pass_bytes_per_s\": %.4g\n",
                m.step_latency_s, m.link_bytes_per_s, m.pass_bytes_per_s);
    platform.intra_node.latency_s = m.step_latency_s;
    platform.intra_node.bandwidth_bytes_per_s = m.link_bytes_per_s;
    platform.allreduce_pass_bytes_per_s = m.pass_bytes_per_s;
  }
  std::vector<simulator::AllreduceCase> cases;
  for (const auto& set : sets)
    for (const auto& sample : set.samples)
      if (sample.bytes >= command.from_bytes) cases.push_back({set.devices, sample.bytes});
  if (cases.empty()) throw Error("--from", "no measurement is that large");
  simulator::SimulateOptions options;
  options.allreduce = simulator::AllreduceAlgorithm::ring;  // NCCL's within a node
  const std::vector<double> simulated = simulator::simulate_allreduces(platform, cases, options);
  std::printf("%-8s %-8s %8s %13s %12s %16s\n", "devices", "role", "samples", "median |err|", "max |err|", "worst at");
  std::size_t index = 0;
  std::vector<double> all;
  for (const auto& set : sets) {
    std::vector<double> errors;
    double worst = -1, worst_bytes = 0, worst_signed = 0;
    for (const auto& sample : set.samples) {
      if (sample.bytes < command.from_bytes) continue;
      const double error = simulated[index++] / sample.seconds - 1;
      errors.push_back(std::abs(error));
      if (std::abs(error) > worst) {
        worst = std::abs(error);
        worst_signed = error;
        worst_bytes = double(sample.bytes);
      }
    }
    all.insert(all.end(), errors.begin(), errors.end());
    std::printf("%-8d %-8s %8zu %12.2f%% %11.2f%% %+7.1f%% @ %.0f MiB\n", set.devices,
                command.fit_devices.empty() ? "checked" : fitted_on(set.devices) ? "fitted" : "held out", errors.size(),
                100 * median(errors), 100 * worst, 100 * worst_signed, worst_bytes / 1048576);
  }
  std::printf("all: median |error| %.2f%%, max %.2f%% over %zu all-reduces of %.0f MiB and more\n", 100 * median(all),
              100 * *std::max_element(all.begin(), all.end()), all.size(), double(command.from_bytes) / 1048576);
}

}  // namespace

void add_allreduce_commands(CLI::App& app) {
  auto command = std::make_shared<AllreduceCheckCommand>();
  auto* sub = app.add_subcommand("allreduce-check",
                                 "simulated gradient all-reduces on a platform against measured ones (nccl-tests CSV)");
  sub->add_option("--platform", command->platform, "platform JSON or shipped name (e.g. a100-node)")->required();
  sub->add_option("--measured", command->measured,
                  "DEVICES=FILE: nccl-tests output as CSV (size(B) and time(ns) columns), repeatable")
      ->required();
  sub->add_option("--fit", command->fit_devices,
                  "fit the ring model (step latency, link bandwidth, buffer pass) on the files of these device "
                  "counts (comma-separated, two or more) and check every file with it; the rest are held out")
      ->delimiter(',');
  sub->add_option("--from", command->from_bytes, "smallest all-reduce checked and fitted (e.g. 16MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  sub->callback([command] { run_check(*command); });
}

}  // namespace plait::cli
