// report.md and the error summary of a sweep.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "detail/report.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments {
namespace {

double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string figure(const std::optional<double>& value, const char* format = "%.4g") {
  if (!value) return "";
  char text[32];
  std::snprintf(text, sizeof text, format, *value);
  return text;
}

std::string percent(const std::optional<double>& value) {
  return value ? figure(*value * 100, "%+.1f %%") : std::string();
}

std::string plain_percent(const std::optional<double>& value) {
  return value ? figure(*value * 100, "%.1f %%") : std::string("n/a");
}

std::string table_cell(std::string text) {
  std::replace(text.begin(), text.end(), '|', '/');
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text.size() > 160 ? text.substr(0, 157) + "..." : text;
}

}  // namespace

SweepSummary summarize_results(const std::vector<PointResult>& results) {
  SweepSummary summary;
  std::vector<double> errors, spreads, errors_at_calibration, speed_factors;
  std::vector<double> speedup_errors, speedup_errors_at_calibration, serial_errors, held_out_errors;
  for (const PointResult& r : results) {
    ++summary.points;
    const bool unsteady = r.status == "unsteady";
    const bool failed = r.status != "ok" && r.status != "predicted" && !unsteady;
    summary.failed += failed;
    summary.unsteady += unsteady;
    summary.runs += r.runs.value_or(0);
    summary.disturbed_runs += r.disturbed_runs.value_or(0);
    if (!r.measured_time_s) continue;
    ++summary.measured;
    if (unsteady) continue;  // its error is the machine's, not the model's
    if (r.relative_error) errors.push_back(std::abs(*r.relative_error));
    if (r.held_out_s && *r.measured_time_s > 0) held_out_errors.push_back(std::abs(*r.held_out_s / *r.measured_time_s - 1));
    if (r.measured_min_s && r.measured_max_s && *r.measured_time_s > 0)
      spreads.push_back((*r.measured_max_s - *r.measured_min_s) / *r.measured_time_s);
    if (r.predicted_at_calibration_s && r.speed_factor && *r.measured_time_s > 0) {
      errors_at_calibration.push_back(std::abs(*r.predicted_at_calibration_s / *r.measured_time_s - 1));
      speed_factors.push_back(*r.speed_factor);
    }
    if (r.speedup_error) speedup_errors.push_back(std::abs(*r.speedup_error));
    if (r.measured_speedup && *r.measured_speedup > 0) {
      // Without a probe the prediction is at the calibration's speed already.
      const auto& at_calibration = r.predicted_speedup_at_calibration ? r.predicted_speedup_at_calibration
                                                                      : r.predicted_speedup;
      if (at_calibration) speedup_errors_at_calibration.push_back(std::abs(*at_calibration / *r.measured_speedup - 1));
    }
    if (r.predicted_serial_s && r.measured_serial_s && *r.measured_serial_s > 0)
      serial_errors.push_back(*r.predicted_serial_s / *r.measured_serial_s - 1);
  }
  const auto median_and_max = [](const std::vector<double>& values, std::optional<double>& median,
                                 std::optional<double>& max) {
    if (values.empty()) return;
    median = median_of(values);
    max = *std::max_element(values.begin(), values.end());
  };
  median_and_max(errors, summary.median_abs_error, summary.max_abs_error);
  const auto mean = [](const std::vector<double>& values) {
    return std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  };
  if (!errors.empty()) summary.mean_abs_error = mean(errors);
  if (!held_out_errors.empty()) {
    summary.mean_abs_held_out_error = mean(held_out_errors);
    summary.max_abs_held_out_error = *std::max_element(held_out_errors.begin(), held_out_errors.end());
  }
  median_and_max(spreads, summary.median_spread, summary.max_spread);
  median_and_max(errors_at_calibration, summary.median_abs_error_at_calibration, summary.max_abs_error_at_calibration);
  median_and_max(speedup_errors, summary.median_abs_speedup_error, summary.max_abs_speedup_error);
  median_and_max(speedup_errors_at_calibration, summary.median_abs_speedup_error_at_calibration,
                 summary.max_abs_speedup_error_at_calibration);
  if (!serial_errors.empty()) {
    summary.median_serial_error = median_of(serial_errors);
    summary.min_serial_error = *std::min_element(serial_errors.begin(), serial_errors.end());
    summary.max_serial_error = *std::max_element(serial_errors.begin(), serial_errors.end());
  }
  if (!speed_factors.empty()) {
    summary.min_speed_factor = *std::min_element(speed_factors.begin(), speed_factors.end());
    summary.max_speed_factor = *std::max_element(speed_factors.begin(), speed_factors.end());
  }
  return summary;
}

namespace detail {

std::string format_report(const SweepSpec& spec, const std::vector<PointResult>& results,
                          const SweepSummary& summary, const std::vector<std::string>& plots,
                          const std::string& profile) {
  std::ostringstream out;
  out << "# Sweep " << spec.name << "\n\n";
  if (!spec.description.empty()) out << spec.description << "\n\n";
  out << "- points: " << summary.points << " of " << spec.points.size() << " in the spec; measured "
      << summary.measured << ", failed " << summary.failed << " (resumed from results.csv: " << summary.resumed
      << ")\n";
  out << "- pricing: ";
  if (profile.empty())
    out << "the analytic roofline on each platform's device sheets\n";
  else if (!spec.calibrate)
    out << "the profile " << profile << "\n";
  else if (!spec.steps_csv.empty())
    out << "the kernel model fitted on the rows of " << spec.steps_csv << " (" << profile
        << ", plait calibrate --from-steps; parameters and k-fold check in fit.md)\n";
  else
    out << "the profile " << profile << " (plait calibrate on this machine)\n";
  if (summary.calibration_attempts > 0) {
    out << "- calibration steadiness: " << summary.calibration_attempts << " attempt(s); the last "
        << (summary.calibration_steady ? "was steady" : "**still met other work**: every prediction may be off")
        << " (its busiest 10 s: " << figure(summary.calibration_busiest_cores, "%.2f")
        << " cores of other work; calibration-steadiness.json)\n";
  }
  if (spec.measure) {
    out << "- measurement: `plait run`, " << spec.measure->repeats << " runs of " << spec.measure->steps
        << " steps (after " << spec.measure->warmup
        << " warm-up) per point, in rounds over the points (run 1 of every point, then run 2, ...); "
           "the measured time is the median steady run\n";
    out << "- steadiness: " << summary.runs << " runs made, " << summary.disturbed_runs
        << " judged disturbed (other work on the machine, a core's speed changing, a step far off the others: "
           "`steadiness` in points/*/measured-K.json says why); "
        << summary.extra_runs << " runs beyond " << spec.measure->repeats
        << " a point, re-measuring disturbed or spread-out points (up to " << spec.measure->run_limit() << " runs)";
    if (summary.unsteady > 0) {
      out << "; **" << summary.unsteady << " point(s) never became steady** and are left out of every error figure:";
      for (const PointResult& r : results)
        if (r.status == "unsteady") out << " `" << point_name(r.config) << "`";
    }
    out << "\n";
  }
  char wall[64];
  std::snprintf(wall, sizeof wall, "%.0f s", summary.wall_s);
  out << "- wall time of this invocation: " << wall << "\n\n";

  if (summary.measured > 0) {
    const bool probed = summary.median_abs_error_at_calibration.has_value();
    const bool runs = summary.median_spread.has_value();  // measured here, not taken from a file
    out << "## Prediction error\n\n"
        << "Step time: predicted / measured - 1"
        << (runs ? ". Speedup: predicted speedup / measured speedup - 1, each speedup the serial step over the "
                   "point's step"
                 : "")
        << (probed ? "; with the probe, each run is priced at its ranks' probed speeds (see below)" : "")
        << ".\n\n"
        << "| abs(error) over " << summary.measured - summary.unsteady << " measured points"
        << (summary.unsteady > 0 ? " (" + std::to_string(summary.unsteady) + " unsteady left out)" : std::string())
        << " | median | max |\n| --- | --- | --- |\n"
        << "| step time" << (probed ? ", with the speed probe" : "") << " | " << plain_percent(summary.median_abs_error)
        << " | " << plain_percent(summary.max_abs_error) << " |\n";
    if (summary.mean_abs_held_out_error)
      out << "| step time, held-out (k-fold) | mean " << plain_percent(summary.mean_abs_held_out_error) << " | "
          << plain_percent(summary.max_abs_held_out_error) << " |\n";
    if (probed)
      out << "| step time at the calibration's speed (no probe) | "
          << plain_percent(summary.median_abs_error_at_calibration) << " | "
          << plain_percent(summary.max_abs_error_at_calibration) << " |\n";
    if (summary.median_abs_speedup_error)
      out << "| **speedup**" << (probed ? ", with the speed probe" : "") << " | "
          << plain_percent(summary.median_abs_speedup_error) << " | " << plain_percent(summary.max_abs_speedup_error)
          << " |\n";
    if (probed && summary.median_abs_speedup_error_at_calibration)
      out << "| speedup at the calibration's speed (no probe) | "
          << plain_percent(summary.median_abs_speedup_error_at_calibration) << " | "
          << plain_percent(summary.max_abs_speedup_error_at_calibration) << " |\n";
    if (runs)
      out << "| noise floor: spread (max - min) / median of the runs | " << plain_percent(summary.median_spread)
          << " | " << plain_percent(summary.max_spread) << " |\n";
    if (summary.median_serial_error)
      out << "\nThe serial step (the speedup's numerator), predicted / measured - 1: median "
          << percent(summary.median_serial_error) << ", from " << percent(summary.min_serial_error) << " to "
          << percent(summary.max_serial_error) << " (`predicted_serial_s`, `measured_serial_s` in results.csv).\n";
    if (runs) out << "\nAn error below the spread cannot be told from noise on this machine.\n";
    if (summary.min_speed_factor)
      out << "This machine's speed drifts (a shared VM's cores change speed by up to 40 % within a minute, each "
             "on its own): every run also timed a forward step of each of its blocks in turn on every rank, "
             "before and after its steps (`plait-exec --speed-probe`). Each run is predicted again with each "
             "rank's compute scaled by its probe over the calibration's (`plait simulate --rank-compute-scale`), "
             "and a point's error is the median of its runs' errors; its prediction at those speeds over the one "
             "at the calibration's (`speed_factor` in results.csv) ranged from "
          << figure(*summary.min_speed_factor, "%.3f") << "x to " << figure(*summary.max_speed_factor, "%.3f")
          << "x.\n";
    out << "\n";
  }
  if (const std::string kinds = devices_table(results); !kinds.empty())
    out << "## Kinds against devices\n\nEach family's fastest predicted split of the devices into ranks x "
           "data-parallel replicas (`?`: not measured).\n\n"
        << kinds << "\n";
  if (const std::string splits = data_parallel_table(results); !splits.empty())
    out << "## Splits against data parallelism\n\nEach family's predicted time per step at its fewest and most "
           "data-parallel replicas and at its fastest split (ranks x replicas, seconds).\n\n"
        << splits << "\n";
  out << step_rows_section(spec, results);
  if (!plots.empty()) {
    out << "## Plots\n\n";
    for (const std::string& plot : plots) out << "![" << plot << "](" << plot << ")\n\n";
  }
  std::vector<const PointResult*> grid_points;  // points from a CSV have their own section
  for (const PointResult& r : results)
    if (r.config.source.empty()) grid_points.push_back(&r);
  if (grid_points.empty()) return out.str() + "All figures are in `results.csv`; each point's Program and prediction are in `points/`.\n";
  out << "## Points\n\n"
      << "| kind | layers | levels (fwd/adj) | cf | relax | iters | ranks | dp | model | mask | platform | predicted s | measured s "
         "(min..max) | error | serial predicted s | serial measured s | predicted speedup | measured speedup | "
         "speedup error | speed factor | memory/rank | status |\n"
      << "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
         "| ---: | ---: | ---: | --- |\n";
  for (const PointResult* point : grid_points) {
    const PointResult& r = *point;
    const PointConfig& c = r.config;
    std::string measured = figure(r.measured_time_s);
    if (r.measured_min_s && r.measured_max_s)
      measured += " (" + figure(r.measured_min_s) + ".." + figure(r.measured_max_s) + ")";
    std::string status = r.status;
    if (!r.error.empty()) status += ": " + table_cell(r.error);
    const std::string frozen = frozen_label(c);
    out << "| " << kind_label(c) << (frozen.empty() ? "" : " " + frozen) << " | " << c.layers << " | " << (c.fwd_levels > 0 && c.fwd_levels != c.levels ? std::to_string(c.fwd_levels) + "/" : "") << c.levels << " | " << c.cf << " | " << c.relax << " | " << c.fwd_iters << "/"
        << c.bwd_iters << " | " << c.ranks << " | " << c.dp << (c.dp_overlap ? " overlapped" : "") << " | d" << c.model.d_model << " h" << c.model.heads << " s"
        << c.model.seq << " b" << c.model.batch << " | " << c.mask << " | " << c.platform << " | "
        << figure(r.predicted_time_s) << " | " << measured << " | " << percent(r.relative_error) << " | "
        << figure(r.predicted_serial_s) << " | " << figure(r.measured_serial_s) << " | "
        << figure(r.predicted_speedup, "%.3g") << " | " << figure(r.measured_speedup, "%.3g") << " | "
        << percent(r.speedup_error) << " | " << figure(r.speed_factor, "%.3f") << " | "
        << (r.predicted_memory_bytes ? schedule::format_bytes(*r.predicted_memory_bytes) : "") << " | " << status
        << " |\n";
  }
  out << "\nAll figures are in `results.csv`; each point's Program, prediction and runs are in `points/`.\n";
  return out.str();
}

}  // namespace detail
}  // namespace plait::experiments
