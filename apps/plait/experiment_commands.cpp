// plait sweep: run (or resume) a sweep spec into a directory.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/error.hpp"

namespace plait::cli {
namespace {

std::string percent(const std::optional<double>& value) {
  if (!value) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", *value * 100);
  return text;
}

}  // namespace

void add_experiment_commands(CLI::App& app) {
  auto options = std::make_shared<experiments::SweepOptions>();
  auto* sweep = app.add_subcommand(
      "sweep", "predict (plait simulate) and measure (plait run) a grid of training steps; CSV, plots, report");
  sweep->add_option("spec", options->spec_path, "sweep spec (plait.sweep JSON), e.g. experiments/local.json")
      ->required();
  sweep->add_option("-o,--output", options->output_dir, "directory for results.csv, plots and report.md")
      ->required();
  sweep->add_option("-j,--jobs", options->jobs, "plait simulate processes at once (measurements run alone)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sweep->add_flag("--force", options->force, "replace another spec's results in the directory");
  sweep->add_option("--tools", options->tools_dir,
                    "directory holding plait-exec and plait-bench (default: next to plait, then PATH)");
  sweep->add_option("--mpirun", options->mpirun, "MPI launcher for plait run")->capture_default_str();
  sweep->add_option("--cores", options->cores, "measure points with at most this many ranks (default: the cores)")
      ->check(CLI::NonNegativeNumber);
  auto disturb = std::make_shared<std::string>();
  sweep->add_option("--disturb", *disturb,
                    "START:STOP: spin one core from START to STOP seconds into the sweep (see its runs "
                    "judged disturbed and measured again)");
  sweep->callback([options, disturb] {
    if (!disturb->empty()) options->disturb = experiments::parse_disturb_window(*disturb);
    options->plait_binary = this_binary();
    options->progress = experiments::progress_on_terminal();
    const experiments::SweepSummary summary = experiments::run_sweep(*options);
    std::printf("%d points (%d measured, %d failed, %d resumed) in %.0f s\n", summary.points, summary.measured,
                summary.failed, summary.resumed, summary.wall_s);
    if (summary.measured > 0 && summary.median_spread)
      std::printf("step-time error |predicted/measured - 1|: median %s, max %s (noise floor: run spread median %s, max %s)\n",
                  percent(summary.median_abs_error).c_str(), percent(summary.max_abs_error).c_str(),
                  percent(summary.median_spread).c_str(), percent(summary.max_spread).c_str());
    else if (summary.measured > 0)  // measured elsewhere: rows of a CSV
      std::printf("step-time error |predicted/measured - 1|: mean %s, median %s, max %s\n",
                  percent(summary.mean_abs_error).c_str(), percent(summary.median_abs_error).c_str(),
                  percent(summary.max_abs_error).c_str());
    if (summary.runs > 0)
      std::printf("runs: %d made, %d judged disturbed, %d beyond the spec's repeats; %d point(s) never steady "
                  "(left out of the errors)\n",
                  summary.runs, summary.disturbed_runs, summary.extra_runs, summary.unsteady);
    if (summary.calibration_attempts > 1 || !summary.calibration_steady)
      std::printf("calibration: %d attempt(s), the first met other work; the last %s (%.2f cores of other work)\n",
                  summary.calibration_attempts, summary.calibration_steady ? "was steady" : "still met other work",
                  summary.calibration_busiest_cores);
    if (summary.mean_abs_held_out_error)
      std::printf("held-out (5-fold) step-time error: mean %s, max %s\n",
                  percent(summary.mean_abs_held_out_error).c_str(), percent(summary.max_abs_held_out_error).c_str());
    if (summary.median_abs_speedup_error)
      std::printf("speedup error |predicted/measured speedup - 1|: median %s, max %s\n",
                  percent(summary.median_abs_speedup_error).c_str(), percent(summary.max_abs_speedup_error).c_str());
    if (summary.median_abs_error_at_calibration)
      std::printf("at the calibration's speed (no speed probe): step time median %s, max %s; speedup median %s, "
                  "max %s; speed factors %.3f..%.3f\n",
                  percent(summary.median_abs_error_at_calibration).c_str(),
                  percent(summary.max_abs_error_at_calibration).c_str(),
                  percent(summary.median_abs_speedup_error_at_calibration).c_str(),
                  percent(summary.max_abs_speedup_error_at_calibration).c_str(), *summary.min_speed_factor,
                  *summary.max_speed_factor);
    std::printf("report: %s\n", summary.report_path.c_str());
  });
}

}  // namespace plait::cli
