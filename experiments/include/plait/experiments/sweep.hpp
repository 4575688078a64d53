// Sweeps: a grid of MGRIT training steps, each built into a Program, predicted
// by `plait simulate` (one process per point, points in parallel) and, where
// its ranks fit this machine, measured by `plait run` (one run at a time, in rounds
// over the points: run 1 of every point, then run 2, ...).
// Results go to DIR/results.csv, PNG plots (gnuplot) and DIR/report.md.
//
// Spec format "plait.sweep", version 1 (documented in spec.cpp and README.md):
//   {"format": "plait.sweep", "version": 1, "name": "local",
//    "calibrate": true,
//    "base": {"layers": 32, "levels": 2, "cf": 2, "relax": "F", "fwd_iters": 2,
//             "bwd_iters": 1, "ranks": 1, "model": {"d_model": 64, "heads": 2,
//             "seq": 32, "batch": 2}, "mask": "causal", "platform": "local"},
//    "grids": [{"layers": [16, 32, 64], "levels": [2, 3]}, ...],
//    "measure": {"steps": 5, "warmup": 1, "repeats": 3}}
// or, instead of grids, "points_from": {"csv": FILE, "vocab": V}: one point per
// row of measured steps (calibrate --from-steps' columns), each row's measured
// time taken from the file.
// No torch, MPI or SimGrid here: the sweep drives the plait binaries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plait::experiments {

// One model shape of the grid (the transformer block the executor runs).
struct ModelShape {
  std::int32_t d_model = 64, heads = 2, seq = 32, batch = 2;
  std::int32_t mlp_ratio = 4;  // fixed
  std::string dtype = "fp32";  // the spec's "dtype", the same for every point
  friend bool operator==(const ModelShape&, const ModelShape&) = default;
};

// One configuration of the grid: the config columns of results.csv.
struct PointConfig {
  std::string kind = "mgrit";       // mgrit | gpipe | 1f1b | 1f1b-interleaved | zb-h1
  std::int32_t micro_batches = 1;   // pipelines: the batch's split
  std::int32_t virtual_stages = 1;  // 1f1b-interleaved: chunks a stage
  std::int32_t dp = 1;              // data parallelism: replicas of the `ranks`-rank layout
  bool dp_overlap = false;          // gradient buckets summed amid the backward (DDP)
  std::int32_t frozen = 0;          // pipelines: blocks frozen (forward only), PipeTransformer
  bool repack = false;              // frozen blocks re-packed: ranks and dp are the re-packed layout
  std::int32_t layers = 32, levels = 2, cf = 2;
  std::string relax = "F";
  std::int32_t fwd_iters = 2, bwd_iters = 1, ranks = 1;
  ModelShape model;
  std::string mask = "causal";  // causal | none
  std::string platform = "local";
  std::int32_t tp = 1;        // tensor parallelism: ranks x dp x tp devices
  std::int32_t vocab = 0;     // > 0: the full GPT step (embeddings, output layer, Adam) over this vocabulary
  bool recompute = false;     // pipelines: activation checkpointing
  bool selective_recompute = false;  // only attention's core recomputed (spec: "recompute": "selective")
  bool sequence_parallel = false;    // Megatron's, beside tp > 1
  std::int32_t zero = 0;             // ZeRO stage over the dp replicas (3: FSDP, with prefetch)
  // MGRIT: the forward's levels (0: `levels`; 1: a serial forward, pipelined over the ranks).
  std::int32_t fwd_levels = 0;
  std::string dp_allreduce = "packed";  // packed | per-tensor (TorchBraid's); dp_overlap for buckets
  std::string ends = "split";           // split | first-rank (TorchBraid's open and close layers on rank 0)
  std::int32_t buffer_blocks = 0;       // with a vocabulary: serial blocks at each end (TorchBraid's)
  std::string allreduce = "auto";       // the simulator's all-reduce algorithm (plait simulate --allreduce)
  std::string source;         // a point from a CSV: "FILE:LINE" of its row ("" for grid points)
  friend bool operator==(const PointConfig&, const PointConfig&) = default;
};

// A short name of a point, unique within a sweep, usable as a file name.
std::string point_name(const PointConfig& config);
// gpipe, 1f1b, 1f1b-interleaved or zb-h1: its ranks are stages, and MGRIT's settings do not apply.
bool is_pipeline(const PointConfig& config);
// The point's kind as a reader sees it: "mgrit", or a pipeline with its
// micro-batches (and chunks), "1f1b M4", "1f1b-interleaved M4 v2".
std::string kind_label(const PointConfig& config);
// Its frozen blocks, "F8" or "F8 repacked"; "" when none.
std::string frozen_label(const PointConfig& config);
// The line of a point's CSV row ("FILE:LINE" in source); -1 for a grid point.
int source_line(const PointConfig& config);
// The devices (ranks) a point runs on: ranks x dp x tp.
std::int32_t devices(const PointConfig& config);

struct MeasureSpec {
  int steps = 5;    // timed steps per run
  int warmup = 1;   // untimed steps before them
  int repeats = 3;  // runs per point: their spread is measured_min_s..measured_max_s
  // With a calibrated profile: every run times its speed probe (plait-exec
  // --speed-probe) and the point is priced at its ranks' speeds (PointResult::speed_factor).
  bool speed_probe = true;
  // A run that met other work (detail::judge_run) does not count: the point
  // gets more runs until `repeats` of them are steady, and so does a point
  // whose steady runs spread past max_spread ((max - min) / median), up to
  // max_runs runs a point (0: 2 x repeats). A point left with fewer than a
  // majority of `repeats` steady runs is "unsteady": out of the headline.
  int max_runs = 0;
  double max_spread = 0.5;
  int run_limit() const { return max_runs > 0 ? max_runs : 2 * repeats; }
};

struct SweepSpec {
  static constexpr int format_version = 1;
  std::string name;
  std::string description;
  bool calibrate = false;                    // run `plait calibrate` into DIR/profile.json first
  std::vector<std::string> calibrate_args;   // extra arguments for it
  std::optional<MeasureSpec> measure;        // absent: prediction only
  std::vector<PointConfig> points;           // the grid, expanded, in spec order, no duplicates
  // "points_from": the CSV of measured steps (its path as the spec names it,
  // resolved against the spec's folder) and each point's measured seconds, in
  // points' order. With calibrate, the kernel model is fitted on these rows
  // (plait calibrate --from-steps, with its k-fold check).
  std::string steps_csv;
  std::vector<double> recorded_time_s;
  std::string profile;  // "profile": a profile file that prices every point (resolved as steps_csv)
};

// Parses and validates a spec, collecting every problem: the plait::Error it
// throws lists each as "<JSON pointer>: <reason>", one per line after the first.
SweepSpec parse_sweep_spec(const std::string& text, const std::string& origin = "<string>");
SweepSpec load_sweep_spec(const std::string& path);

// The outcome of one point (a row of results.csv). Times in seconds.
struct PointResult {
  PointConfig config;
  std::optional<double> predicted_time_s, measured_time_s, measured_min_s, measured_max_s;
  std::optional<double> predicted_speedup, measured_speedup;
  std::optional<double> relative_error;  // predicted / measured - 1
  // With a calibrated profile and a measurement: the prediction at the
  // calibration's speed, and speed_factor = predicted_time_s / it: how much
  // slower (> 1) the runs' cores were, as their speed probes measured them
  // (each run predicted at its ranks' own speeds, see evaluate_point).
  std::optional<double> predicted_at_calibration_s, speed_factor;
  // The serial step (the speedup's numerator): predicted (at the runs' speeds,
  // as predicted_time_s) and measured (median of the runs' serial baselines).
  std::optional<double> predicted_serial_s, measured_serial_s;
  std::optional<double> speedup_error;                       // predicted / measured speedup - 1
  std::optional<double> predicted_speedup_at_calibration;    // with the prediction at the calibration's speed
  std::optional<double> predicted_memory_bytes;  // the fullest rank's estimated memory (schedule::estimate_memory)
  // Points from a CSV with calibrate: the row's prediction by the kernel model
  // fitted without its fold (plait calibrate --from-steps --folds), and the
  // compute on the predicted critical path (the rest is waiting on messages and collectives).
  std::optional<double> held_out_s, critical_compute_s;
  // Measured here: the runs made and how many of them were judged disturbed
  // (met other work: the point's figures come from the others).
  std::optional<int> runs, disturbed_runs;
  // ok | predicted | unsteady (too few steady runs: figures from every run, left
  // out of the headline) | build_failed | predict_failed | measure_failed
  std::string status;
  std::string error;                     // why, when failed
};

// results.csv: a header line, then one row per point (RFC 4180 quoting).
std::string results_csv_header();
std::string dump_results_csv(const std::vector<PointResult>& results);
// Throws plait::Error naming the line for a malformed file.
std::vector<PointResult> parse_results_csv(const std::string& text, const std::string& origin = "<string>");

struct SweepOptions {
  std::string spec_path;
  std::string output_dir;
  int jobs = 1;                // parallel `plait simulate` processes
  bool force = false;          // replace another spec's results in output_dir
  std::string plait_binary;    // the plait CLI the sweep runs for each point
  std::string tools_dir;       // where plait-exec and plait-bench are ("": next to plait_binary, then PATH)
  std::string mpirun = "mpirun";
  int cores = 0;               // measure points with ranks <= cores (0: this machine's cores)
  bool progress = false;       // rate and ETA on stderr
  // Other work on the machine, to see the sweep cope (plait sweep --disturb
  // START:STOP): a thread spinning on one core from START to STOP seconds
  // after the sweep began.
  std::optional<std::pair<double, double>> disturb;
};

// "START:STOP" seconds, 0 <= START < STOP; throws plait::Error("--disturb", why).
std::pair<double, double> parse_disturb_window(const std::string& text);

struct SweepSummary {
  int points = 0, measured = 0, failed = 0, resumed = 0;
  // Points whose runs never became steady (left out of every error figure
  // below), runs made, runs beyond the spec's repeats and runs judged disturbed.
  int unsteady = 0, runs = 0, extra_runs = 0, disturbed_runs = 0;
  // The calibration made by this sweep: its attempts (made again when it met
  // other work), whether the last was steady and its busiest 10 s of other
  // work, in cores. 0 attempts: no calibration here (or one resumed from an older plait).
  int calibration_attempts = 0;
  bool calibration_steady = true;
  double calibration_busiest_cores = 0;
  std::optional<double> median_abs_error, max_abs_error, mean_abs_error;  // over measured points
  // Points from a CSV with a fit: the k-fold held-out error (PointResult::held_out_s).
  std::optional<double> mean_abs_held_out_error, max_abs_held_out_error;
  std::optional<double> median_spread, max_spread;            // (max - min) / measured, the noise floor
  // Over points with a speed probe: the error of predicted_at_calibration_s
  // (without the machine's drift taken out) and the range of speed_factor.
  std::optional<double> median_abs_error_at_calibration, max_abs_error_at_calibration;
  std::optional<double> min_speed_factor, max_speed_factor;
  // The speedup's error, |predicted / measured speedup - 1|, with and without the probe.
  std::optional<double> median_abs_speedup_error, max_abs_speedup_error;
  std::optional<double> median_abs_speedup_error_at_calibration, max_abs_speedup_error_at_calibration;
  // The serial step's error, predicted / measured - 1 (signed: is it priced fast or slow?).
  std::optional<double> median_serial_error, min_serial_error, max_serial_error;
  double wall_s = 0;
  std::string report_path;
};

// Runs (or resumes) a sweep. Bad input (spec, another spec's results in the
// directory) throws plait::Error; a failing point becomes a row and the sweep goes on.
SweepSummary run_sweep(const SweepOptions& options);

// Whether progress belongs on stderr: it is a terminal, and not CI (env CI=true).
bool progress_on_terminal();

// Error summary and noise floor of finished rows (also used by the report).
SweepSummary summarize_results(const std::vector<PointResult>& results);

}  // namespace plait::experiments
