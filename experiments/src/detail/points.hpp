// One point of a sweep: its Program, its prediction (a `plait simulate`
// process) and its measurement (`plait run`, repeated).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "detail/measure_rounds.hpp"
#include "plait/experiments/sweep.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/program.hpp"

namespace plait::experiments::detail {

// The binaries a sweep drives and where its files go.
struct Tools {
  std::string plait;       // the plait CLI
  std::string plait_exec;  // passed to `plait run --exec`
  std::string mpirun = "mpirun";
  std::string profile;     // "" : analytic pricing
};

// The transformer block of a point (its shape and mask).
schedule::ModelDesc point_model(const PointConfig& config);

// The shape its ops run at: one micro-batch of it (pipelines).
schedule::ModelDesc point_op_model(const PointConfig& config);

// The Program of a point (schedule::build_mgrit, build_gpipe or build_1f1b); throws plait::Error.
schedule::BuildSpec point_build_spec(const PointConfig& config);
schedule::Program build_point_program(const PointConfig& config);

// One point per row of a CSV of measured steps (costmodels::load_step_csv's
// columns) with its measured seconds: the Megatron GPT step the row ran, of
// `vocab` (padded as Megatron pads it), on base's platform. Throws plait::Error
// naming the line and column of a bad row.
std::vector<std::pair<PointConfig, double>> step_points(const std::string& csv_path, int vocab, const PointConfig& base);

// Fills predicted_time_s, predicted_serial_s and predicted_speedup from `plait simulate --json`
// on point_dir/program.json; throws plait::Error with the child's last words.
void predict_point(const Tools& tools, const std::string& point_dir, PointResult& result);

// The prediction of a point whose runs took `measured_s` and were each
// predicted at their own speeds as `predicted_s`: the median measured time
// times the median of predicted / measured, so that the point's error is the
// median of its runs' errors. Throws plait::Error for empty or unequal lists.
double paired_prediction(const std::vector<double>& measured_s, const std::vector<double>& predicted_s);

// Run number `run` of a point: `plait run -n P` of point_dir/program.json into
// point_dir/measured-<run>.json, with --speed-probe when the profile holds the
// point's speed references (and measure.speed_probe). A run that finished
// before (a resumed sweep) is kept. Throws plait::Error when the run fails.
void measure_run(const Tools& tools, const MeasureSpec& measure, const std::string& point_dir,
                 const PointConfig& config, int run);

// From the point's runs numbered `runs`: measured_time_s is the median of
// the runs' times per step, measured_min_s/max_s their range, measured_serial_s
// the median of their serial baselines, measured_speedup their ratio. With the
// speed probes, each run is predicted again with each rank's compute scaled by
// its probe / reference (> 1: that core ran slower than in the calibration):
// predicted_time_s becomes measured_time_s times the median of the runs'
// predicted / measured (predicted_at_calibration_s keeps the prediction at the
// calibration's speed; speed_factor is their ratio); predicted_serial_s is
// paired with the runs' serial steps the same way, each priced at the run's
// serial speed probe, and predicted_speedup is predicted_serial_s /
// predicted_time_s (predicted_speedup_at_calibration keeps the speedup at the
// calibration's speed). Throws plait::Error for a missing or bad run file.
void evaluate_point(const Tools& tools, const MeasureSpec& measure, const std::string& point_dir,
                    const std::vector<int>& runs, PointResult& result);

// Run `run`'s verdict (judge_run on point_dir/measured-<run>.json), written
// into that file as "steadiness" so that a reader sees why a run did not count.
RunRecord judge_measured_run(const std::string& point_dir, int run);

}  // namespace plait::experiments::detail
