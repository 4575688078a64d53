// `plait calibrate --from-steps`: fit a GPU's kernel model to measured
// training steps on a platform's devices and links; report the k-fold error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "commands.hpp"
#include "fitted_profile.hpp"
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

void run_calibrate_from_steps(const FromStepsArgs& args) {
  if (args.platform.empty()) throw Error("--from-steps", "needs --platform (the devices and links that ran the steps)");
  const std::vector<cm::StepMeasurement> steps = cm::load_step_csv(args.steps_csv);
  const simulator::PlatformSpec platform = simulator::load_platform(simulator::find_platform(args.platform));
  const cm::DeviceSheet sheet = fitted_device_sheet(platform, args.platform);
  cm::StepLinks links;
  links.ring = {.step_latency_s = platform.intra_node.latency_s,
                .link_bytes_per_s = platform.intra_node.bandwidth_bytes_per_s,
                .pass_bytes_per_s = platform.allreduce_pass_bytes_per_s > 0 ? platform.allreduce_pass_bytes_per_s
                                                                            : std::numeric_limits<double>::infinity()};
  links.messages.segments = {{.max_bytes = std::numeric_limits<std::int64_t>::max(),
                              .latency_s = platform.intra_node.latency_s,
                              .seconds_per_byte = 1 / platform.intra_node.bandwidth_bytes_per_s}};
  for (const cm::StepMeasurement& step : steps)
    if (step.gpus > platform.device_count())
      throw Error(args.steps_csv + ": line " + std::to_string(step.line),
                  std::to_string(step.gpus) + " GPUs, the platform " + platform.name + " has " +
                      std::to_string(platform.device_count()));
  const char* ci = std::getenv("CI");
  const bool progress = isatty(STDERR_FILENO) && !(ci && std::string(ci) == "true");
  std::vector<cm::StepEstimator> estimators;
  estimators.reserve(steps.size());
  for (const cm::StepMeasurement& step : steps) {
    try {
      estimators.emplace_back(schedule::build_kind(cm::megatron_step_kind, cm::megatron_step_spec(step)));
    } catch (const Error& error) {
      throw Error(args.steps_csv + ": line " + std::to_string(step.line), error.what());
    }
    if (progress) std::fprintf(stderr, "\rbuilding step Programs %zu/%zu", estimators.size(), steps.size());
  }
  if (progress) std::fprintf(stderr, "\rfitting on %zu steps, %d folds by row and by shape...\n", steps.size(), args.folds);
  const cm::KernelFit fit = cm::fit_kernel_model(steps, estimators, sheet, links);
  const cm::HeldOut held_out = {cm::cross_validate(steps, estimators, sheet, links, args.folds),
                                cm::cross_validate(steps, estimators, sheet, links, args.folds, cm::FoldBy::shape)};

  cm::Profile profile = fitted_profile(fit.device, sheet.name, args.steps_csv, "measured steps");
  profile.shape_factors = fit.shape_factors;
  cm::save_profile(profile, args.output);
  const std::string report = cm::format_step_fit(steps, held_out, fit, args.folds, args.steps_csv);
  if (!args.report.empty()) write_text_file(args.report, report);
  if (!args.predictions.empty()) {
    std::string csv =
        "line,gpus,tp,pp,dp,global_batch,micro_batch,hidden,heads,layers,seq,measured_ms,held_out_predicted_ms,error,"
        "unseen_shape_predicted_ms,unseen_shape_error\n";
    char row[256];
    for (std::size_t i = 0; i < steps.size(); ++i) {
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
}

}  // namespace plait::cli
