// `plait calibrate --from-steps`: fit a GPU's kernel model to measured
// training steps on a platform's devices and links; report the k-fold error.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <limits>

#include "commands.hpp"
#include "fitted_profile.hpp"
#include "plait/costmodels/inter_node_fit.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/simulator/platform.hpp"

namespace plait::cli {

namespace cm = plait::costmodels;

cm::DeviceSheet fitted_device_sheet(const simulator::PlatformSpec& platform, const std::string& name) {
  if (platform.node_devices.empty() || platform.node_devices.front().sheet.empty())
    throw Error("--platform " + name, "its devices name no device sheet to fit");
  return cm::device_sheet(platform.node_devices.front().sheet);
}

cm::Profile fitted_profile(const cm::DeviceSheet& fitted, const std::string& sheet, const std::string& fitted_on,
                           const std::string& what) {
  cm::Profile profile;
  profile.machine.cpu_model = "unknown: fitted on " + what + ", not measured here";
  profile.machine.cores = 1;
  profile.machine.threads = 1;
  profile.machine.device = "fitted:" + sheet;
  profile.device = fitted;
  profile.device.name = sheet + " (fitted on " + fitted_on + ")";
  return profile;
}

namespace {

struct LoadedSteps {
  std::vector<cm::StepMeasurement> steps;
  std::vector<std::string> origin;  // the file of each step
  std::vector<std::size_t> one_node, across_nodes;
};

LoadedSteps load_steps(const std::vector<std::string>& files, const simulator::PlatformSpec& platform) {
  LoadedSteps loaded;
  const int per_node = static_cast<int>(platform.node_devices.size());
  const bool cluster = platform.nodes > 1 && platform.simgrid_xml.empty() && platform.inter_node.topology == simulator::Topology::star;
  for (const std::string& file : files)
    for (const cm::StepMeasurement& step : cm::load_step_csv(file)) {
      if (step.gpus > per_node && !cluster)
        throw Error(file + ": line " + std::to_string(step.line),
                    std::to_string(step.gpus) + " GPUs: the platform " + platform.name + " has " +
                        std::to_string(per_node) + " devices on one node (steps across nodes need a star of nodes)");
      (step.gpus > per_node ? loaded.across_nodes : loaded.one_node).push_back(loaded.steps.size());
      loaded.steps.push_back(step);
      loaded.origin.push_back(file);
    }
  return loaded;
}

std::string joined(const std::vector<std::string>& files) {
  std::string out;
  for (const std::string& file : files) out += (out.empty() ? "" : ", ") + file;
  return out;
}

template <typename T>
std::vector<T> subset(const std::vector<T>& all, const std::vector<std::size_t>& rows) {
  std::vector<T> out;
  for (std::size_t row : rows) out.push_back(all[row]);
  return out;
}

}  // namespace

void run_calibrate_from_steps(const FromStepsArgs& args) {
  if (args.platform.empty()) throw Error("--from-steps", "needs --platform (the devices and links that ran the steps)");
  const std::string platform_path = simulator::find_platform(args.platform);
  const simulator::PlatformSpec platform = simulator::load_platform(platform_path);
  const cm::DeviceSheet sheet = fitted_device_sheet(platform, args.platform);
  const LoadedSteps loaded = load_steps(args.steps_csvs, platform);
  if (loaded.one_node.empty())
    throw Error("--from-steps " + joined(args.steps_csvs),
                "no steps on one node: the kernel model is fitted on those before the links between nodes");
  if (loaded.across_nodes.empty() && !args.platform_out.empty())
    throw Error("--platform-out", "no steps across nodes to fit the inter-node links on");
  cm::StepLinks links;
  links.ring = {.step_latency_s = platform.intra_node.latency_s,
                .link_bytes_per_s = platform.intra_node.bandwidth_bytes_per_s,
                .pass_bytes_per_s = platform.allreduce_pass_bytes_per_s > 0 ? platform.allreduce_pass_bytes_per_s
                                                                            : std::numeric_limits<double>::infinity()};
  links.messages.segments = {{.max_bytes = std::numeric_limits<std::int64_t>::max(),
                              .latency_s = platform.intra_node.latency_s,
                              .seconds_per_byte = 1 / platform.intra_node.bandwidth_bytes_per_s}};
  const char* ci = std::getenv("CI");
  const bool progress = isatty(STDERR_FILENO) && !(ci && std::string(ci) == "true");
  std::vector<cm::StepEstimator> estimators;
  estimators.reserve(loaded.steps.size());
  for (std::size_t i = 0; i < loaded.steps.size(); ++i) {
    try {
      estimators.emplace_back(schedule::build_kind(cm::megatron_step_kind, cm::megatron_step_spec(loaded.steps[i])));
    } catch (const Error& error) {
      throw Error(loaded.origin[i] + ": line " + std::to_string(loaded.steps[i].line), error.what());
    }
    if (progress) std::fprintf(stderr, "\rbuilding step Programs %zu/%zu", estimators.size(), loaded.steps.size());
  }
  const std::vector<cm::StepMeasurement> steps = subset(loaded.steps, loaded.one_node);
  const std::vector<cm::StepEstimator> one_node_estimators = subset(estimators, loaded.one_node);
  if (progress) std::fprintf(stderr, "\rfitting on %zu steps, %d folds by row and by shape...\n", steps.size(), args.folds);
  const cm::KernelFit fit = cm::fit_kernel_model(steps, one_node_estimators, sheet, links);
  const cm::HeldOut held_out = {cm::cross_validate(steps, one_node_estimators, sheet, links, args.folds),
                                cm::cross_validate(steps, one_node_estimators, sheet, links, args.folds, cm::FoldBy::shape)};
  const std::string origin = joined(args.steps_csvs);

  cm::Profile profile = fitted_profile(fit.device, sheet.name, origin, "measured steps");
  profile.shape_factors = fit.shape_factors;
  cm::save_profile(profile, args.output);
  std::string report = cm::format_step_fit(steps, held_out, fit, args.folds, origin);
  if (!loaded.across_nodes.empty()) {
    if (progress) std::fprintf(stderr, "fitting the inter-node links on %zu steps across nodes...\n", loaded.across_nodes.size());
    links.cluster = cm::StepLinks::Cluster{.devices_per_node = static_cast<int>(platform.node_devices.size()),
                                           .inter = simulator::inter_node_links(platform)};
    const auto pricer = fit.pricer();
    const cm::InterNodeFit inter = cm::fit_inter_node(loaded.steps, estimators, loaded.across_nodes, *pricer, links);
    const std::vector<double> left_out =
        cm::model_count(loaded.steps, loaded.across_nodes) > 1
            ? cm::leave_one_model_out(loaded.steps, estimators, loaded.across_nodes, *pricer, links)
            : std::vector<double>{};
    const cm::InterNodeLinks sheet_links = links.cluster->inter;
    links.cluster->inter = inter.links;
    std::vector<double> fitted(loaded.steps.size(), 0);
    for (std::size_t row : loaded.across_nodes) fitted[row] = estimators[row].seconds(*pricer, links);
    report += "\n" + cm::format_inter_node_fit(subset(loaded.steps, loaded.across_nodes), inter, sheet_links,
                                              subset(fitted, loaded.across_nodes),
                                              left_out.empty() ? left_out : subset(left_out, loaded.across_nodes));
    if (!args.platform_out.empty()) {
      const std::string name = std::filesystem::path(args.platform_out).stem().string();
      write_text_file(args.platform_out,
                      simulator::fitted_platform_text(platform_path, inter.links, name,
                                                      platform.name + " with its inter-node links fitted by plait "
                                                      "calibrate --from-steps on " + origin));
    }
  }
  if (!args.report.empty()) write_text_file(args.report, report);
  if (!args.predictions.empty()) {
    std::string csv =
        "line,gpus,tp,pp,dp,global_batch,micro_batch,hidden,heads,layers,seq,measured_ms,held_out_predicted_ms,error,"
        "unseen_shape_predicted_ms,unseen_shape_error\n";
    char row[256];
    for (std::size_t i = 0; i < steps.size(); ++i) {  // the steps on one node
      const cm::StepMeasurement& s = steps[i];
      std::snprintf(row, sizeof row, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.4f,%.4f,%.5f,%.4f,%.5f\n", s.line, s.gpus, s.tp,
                    s.pp, s.dp, s.global_batch, s.micro_batch, s.hidden, s.heads, s.layers, s.seq, s.seconds * 1e3,
                    held_out.rows[i] * 1e3, held_out.rows[i] / s.seconds - 1, held_out.shapes[i] * 1e3,
                    held_out.shapes[i] / s.seconds - 1);
      csv += row;
    }
    write_text_file(args.predictions, csv);
  }
  std::printf("%s\nprofile: %s\n", report.c_str(), args.output.c_str());
  if (!args.platform_out.empty()) std::printf("platform: %s\n", args.platform_out.c_str());
}

}  // namespace plait::cli
