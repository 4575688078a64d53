// `plait calibrate`: measure this machine (plait-bench, plait-exec pingpong) and
// write a profile; --check reports the fitted model's error on held-out shapes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "plait/costmodels/calibration.hpp"
#include "plait/schedule/error.hpp"

namespace plait::cli {
namespace {

namespace cm = plait::costmodels;

struct CalibrateArgs {
  std::string program_path;
  std::string shapes;
  std::string output;
  std::string bench_json;
  std::string pingpong_json;
  bool check = false;
  bool json = false;
  bool no_contended = false;
  bool no_network = false;
  double max_median_error = 0.10;
  cm::CalibrationOptions options;
  FromStepsArgs from_steps;
};

std::vector<schedule::ModelDesc> parse_shape_list(const std::string& text) {
  std::vector<schedule::ModelDesc> shapes;
  std::stringstream stream(text);
  for (std::string name; std::getline(stream, name, ',');) {
    if (!name.empty()) shapes.push_back(cm::parse_shape_name(name));
  }
  if (shapes.empty()) throw Error("--shapes", "no shapes given");
  return shapes;
}

// Progress with rate and ETA, rewritten in place; only on a terminal, never in CI.
std::function<void(const cm::CalibrationProgress&)> make_progress_printer() {
  const char* ci = std::getenv("CI");
  if (!isatty(STDERR_FILENO) || (ci && std::string(ci) == "true")) return nullptr;
  auto stage_start = std::make_shared<std::pair<std::string, double>>("", 0.0);
  return [stage_start](const cm::CalibrationProgress& progress) {
    if (progress.stage != stage_start->first) {
      if (!stage_start->first.empty()) std::fputc('\n', stderr);
      *stage_start = {progress.stage, progress.elapsed_s};
    }
    const double spent = progress.elapsed_s - stage_start->second;
    const double rate = spent > 0 ? progress.done / spent : 0;
    std::fprintf(stderr, "\r%-10s %4d/%-4d  %5.1f/s  ETA %4.0f s  (total %5.1f s)",
                 progress.stage.c_str(), progress.done, progress.total, rate,
                 rate > 0 ? (progress.total - progress.done) / rate : 0.0, progress.elapsed_s);
    if (progress.done == progress.total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

nlohmann::json check_json(const cm::CheckReport& report) {
  nlohmann::json shapes = nlohmann::json::array();
  for (const cm::CheckRow& row : report.rows) {
    shapes.push_back({{"key", row.key}, {"shape", cm::shape_name(row.shape)},
                      {"measured_s", row.measured_s}, {"predicted_s", row.predicted_s},
                      {"relative_error", row.relative_error}});
  }
  return {{"median_relative_error", report.median_relative_error},
          {"max_relative_error", report.max_relative_error}, {"shapes", shapes}};
}

void print_text(const cm::CalibrationResult& result, const std::string& output) {
  const cm::Profile& profile = result.profile;
  std::printf("profile: %s (%zu measurements, %.1f s)\n", output.c_str(), profile.ops.size(),
              result.seconds);
  std::printf("device: peak %.1f GFLOP/s, bandwidth %.1f GB/s, efficiency %.3f\n",
              profile.device.peak_flops_fp32 * 1e-9, profile.device.memory_bandwidth * 1e-9,
              profile.device.efficiency);
  std::printf("%-16s %10s %12s %11s\n", "key", "efficiency", "overhead_us", "contention");
  for (const auto& [key, fit] : profile.fits) {
    std::printf("%-16s %10.3f %12.1f %11.3f\n", key.c_str(), fit.efficiency,
                fit.overhead_s * 1e6, fit.contention_factor);
  }
  if (profile.network) {
    for (const auto& segment : profile.network->model.segments) {
      std::printf("network segment <= %lld B: latency %.2f us, %.2f GB/s\n",
                  static_cast<long long>(segment.max_bytes), segment.latency_s * 1e6,
                  segment.seconds_per_byte > 0 ? 1e-9 / segment.seconds_per_byte : 0.0);
    }
    std::printf("%12s %12s %12s %7s\n", "bytes", "measured_us", "model_us", "error");
    for (const auto& error : result.network_errors) {
      std::printf("%12lld %12.3f %12.3f %6.1f%%\n", static_cast<long long>(error.bytes),
                  error.measured_s * 1e6, error.predicted_s * 1e6, error.relative_error * 100);
    }
  }
  for (const auto& failure : result.failures) {
    std::printf("failed: %s: %s\n", failure.name.c_str(), failure.message.c_str());
  }
  if (result.check) {
    std::printf("check on held-out shapes:\n%-16s %-32s %12s %12s %7s\n", "key", "shape",
                "measured_us", "model_us", "error");
    for (const cm::CheckRow& row : result.check->rows) {
      std::printf("%-16s %-32s %12.1f %12.1f %6.1f%%\n", row.key.c_str(),
                  cm::shape_name(row.shape).c_str(), row.measured_s * 1e6, row.predicted_s * 1e6,
                  row.relative_error * 100);
    }
    std::printf("median relative error %.1f%%, max %.1f%%\n",
                result.check->median_relative_error * 100, result.check->max_relative_error * 100);
  }
}

void run_calibrate(CalibrateArgs& args) {
  cm::CalibrationOptions& options = args.options;
  if (!args.program_path.empty()) {
    // The Program's own shape, plus the defaults so the fit sees several shapes.
    options.shapes = {schedule::load_program(args.program_path).model};
    for (const auto& shape : cm::default_calibration_shapes()) {
      if (!cm::same_shape(shape, options.shapes.front())) options.shapes.push_back(shape);
    }
  } else if (!args.shapes.empty()) {
    options.shapes = parse_shape_list(args.shapes);
  } else if (!args.bench_json.empty()) {
    options.shapes = {};  // every shape the file has (held-out ones excepted with --check)
  } else {
    options.shapes = cm::default_calibration_shapes();
  }
  for (const auto& shape : cm::default_check_shapes()) {
    bool fitted = false;
    for (const auto& other : options.shapes) fitted = fitted || cm::same_shape(shape, other);
    if (!fitted) options.check_shapes.push_back(shape);
  }
  options.check = args.check;
  options.contended = !args.no_contended;
  options.network = !args.no_network;
  options.bench_json = args.bench_json;
  options.pingpong_json = args.pingpong_json;
  options.bench_binary = cm::sibling_executable("plait-bench");
  options.exec_binary = cm::sibling_executable("plait-exec");
  options.mpirun_flags = mpirun_flags;  // as plait run places ranks
  if (!args.json) options.on_progress = make_progress_printer();

  const cm::CalibrationResult result = cm::calibrate(options);
  cm::save_profile(result.profile, args.output);
  if (args.json) {
    nlohmann::json out = result.check ? check_json(*result.check) : nlohmann::json::object();
    out["profile"] = args.output;
    out["calibration_seconds"] = result.seconds;
    double network_max = 0;
    for (const auto& error : result.network_errors) {
      network_max = std::max(network_max, error.relative_error);
    }
    if (result.profile.network) out["network_max_relative_error"] = network_max;
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    print_text(result, args.output);
  }
  if (result.check && result.check->median_relative_error > args.max_median_error) {
    char why[128];
    std::snprintf(why, sizeof why, "median relative error %.1f%% exceeds %.1f%%",
                  result.check->median_relative_error * 100, args.max_median_error * 100);
    throw Error("calibrate --check", why);
  }
}

}  // namespace

void add_costmodel_commands(CLI::App& app) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* calibrate = app.add_subcommand(
      "calibrate", "Measure this machine's ops and network; write a profile for plait simulate");
  auto* program = calibrate->add_option("--program", args->program_path,
                                        "Calibrate the shape of this Program (plus defaults)")
                      ->check(CLI::ExistingFile);
  calibrate->add_option("--shapes", args->shapes,
                        "Comma-separated shapes, e.g. d256.h4.s128.b8.r4.fp32.causal")
      ->excludes(program);
  calibrate->add_option("-o,--output", args->output, "Profile to write")->required();
  calibrate->add_flag("--check", args->check,
                      "Also measure held-out shapes and report the model's error on them");
  calibrate->add_option("--max-median-error", args->max_median_error,
                        "With --check: fail when the median relative error exceeds this")
      ->capture_default_str();
  calibrate->add_flag("--json", args->json, "Print a JSON summary");
  calibrate->add_option("--bench-json", args->bench_json,
                        "Read plait-bench JSON output instead of running it")
      ->check(CLI::ExistingFile);
  calibrate->add_option("--pingpong-json", args->pingpong_json,
                        "Read plait-exec pingpong output instead of running it")
      ->check(CLI::ExistingFile);
  calibrate->add_flag("--no-contended", args->no_contended, "Skip the contended measurement");
  calibrate->add_flag("!--no-in-run", args->options.in_run,
                      "Do not time the ops inside a short 2-rank run of each shape (their contended timing)");
  calibrate->add_option("--contended-processes", args->options.contended_processes,
                        "plait-bench copies run at once for contention (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  calibrate->add_flag("--no-network", args->no_network, "Skip the MPI ping-pong");
  calibrate->add_option("--repetitions", args->options.repetitions, "Repetitions per benchmark")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  calibrate->add_option("--min-time", args->options.min_time_s,
                        "Seconds per repetition (Google Benchmark min time)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 10.0));
  calibrate->add_option("--threads", args->options.threads, "Intra-op threads per process")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  calibrate->add_option("--device", args->options.device, "cpu or cuda")->capture_default_str();
  calibrate->add_option("--from-steps", args->from_steps.steps_csvs,
                        "Fit a GPU's kernel model to these measured training steps (CSV with vTrain's columns) "
                        "instead of measuring this machine; needs --platform. Repeatable: steps on one node fit "
                        "the kernel model, steps across nodes then the inter-node links")
      ->check(CLI::ExistingFile);
  calibrate->add_option("--from-trace", args->from_steps.trace,
                        "Fit a GPU's kernel model to the kernels of a trace (plait import of a PyTorch profiler "
                        "trace recorded with shapes) instead of measuring this machine; needs --platform")
      ->check(CLI::ExistingFile);
  calibrate->add_option("--platform", args->from_steps.platform,
                        "--from-steps, --from-trace: the platform whose devices ran them (e.g. a100-node)");
  calibrate->add_option("--folds", args->from_steps.folds, "--from-steps: folds of the held-out check")
      ->capture_default_str()
      ->check(CLI::Range(2, 100));
  calibrate->add_option("--report", args->from_steps.report,
                        "--from-steps, --from-trace: also write the report (markdown) here");
  calibrate->add_option("--predictions", args->from_steps.predictions,
                        "--from-steps: write each step's held-out prediction here (CSV)");
  calibrate->add_option("--platform-out", args->from_steps.platform_out,
                        "--from-steps with steps across nodes: write the platform with the fitted inter-node "
                        "links here (JSON)");
  calibrate->callback([args] {
    if (args->from_steps.steps_csvs.empty() && args->from_steps.trace.empty()) return run_calibrate(*args);
    if (!args->from_steps.steps_csvs.empty() && !args->from_steps.trace.empty()) {
      throw Error("calibrate", "--from-steps and --from-trace: one at a time");
    }
    args->from_steps.output = args->output;
#ifdef PLAIT_HAVE_SIMGRID
    if (!args->from_steps.trace.empty()) return run_calibrate_from_trace(args->from_steps);
    run_calibrate_from_steps(args->from_steps);
#else
    throw Error("--from-steps, --from-trace", "this plait was built without SimGrid, whose platforms it needs");
#endif
  });
}

}  // namespace plait::cli
