// run_sweep: calibrate (once), then per point build → predict (in parallel)
// → measure (one point at a time); results.csv is rewritten after every point,
// so an interrupted sweep resumes where it stopped.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/csv.hpp"
#include "detail/disturbance.hpp"
#include "detail/host_monitor.hpp"
#include "detail/measure_rounds.hpp"
#include "detail/points.hpp"
#include "detail/progress.hpp"
#include "detail/report.hpp"
#include "detail/steadiness.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments {
namespace {

namespace fs = std::filesystem;

// DIR/spec.json is a copy of the spec whose results DIR holds.
void claim_directory(const SweepOptions& options, const std::string& spec_text) {
  const fs::path dir = options.output_dir;
  const fs::path copy = dir / "spec.json";
  if (fs::exists(copy)) {
    const auto held = nlohmann::json::parse(read_text_file(copy.string()), nullptr, false);
    const auto wanted = nlohmann::json::parse(spec_text, nullptr, false);
    if (held != wanted) {
      if (!options.force)
        throw Error(options.output_dir, "holds the results of another spec (" + copy.string() +
                                            "); pass --force to replace them");
      for (const char* name : {"results.csv", "profile.json", "report.md", "calibrate.log", "fit.md", "held-out.csv",
                               "calibration-steadiness.json"})
        fs::remove(dir / name);
      fs::remove_all(dir / "points");
      fs::remove_all(dir / "plots");
    }
  }
  fs::create_directories(dir / "points");
  write_text_file(copy.string(), spec_text);
}

std::string calibration_shapes(const SweepSpec& spec) {
  std::vector<std::string> shapes;
  // The serial step runs the whole batch; a pipeline's ops one micro-batch.
  for (const PointConfig& point : spec.points)
    for (const schedule::ModelDesc& model : {detail::point_model(point), detail::point_op_model(point)}) {
      const std::string name = costmodels::shape_name(model);
      if (std::find(shapes.begin(), shapes.end(), name) == shapes.end()) shapes.push_back(name);
    }
  std::string list;
  for (const auto& shape : shapes) list += (list.empty() ? "" : ",") + shape;
  return list;
}

// The calibration measures this machine: other work beside it would skew
// every prediction. It is made again (up to three times in all) when a
// stretch of 10 s of it met more than a quarter of a core of other work;
// each attempt's busiest stretch goes to DIR/calibration-steadiness.json.
constexpr int max_calibration_attempts = 3;
constexpr double calibration_window_s = 10, calibration_foreign_cores = 0.25;

void calibrate(const SweepSpec& spec, const SweepOptions& options, const std::string& profile) {
  std::vector<std::string> argv = {options.plait_binary, "calibrate", "--shapes", calibration_shapes(spec),
                                   "-o", profile + ".partial"};
  argv.insert(argv.end(), spec.calibrate_args.begin(), spec.calibrate_args.end());
  const std::string log = options.output_dir + "/calibrate.log";
  std::vector<detail::CalibrationAttempt> attempts;
  for (int attempt = 1;; ++attempt) {
    if (options.progress) std::fprintf(stderr, "calibrating this machine (%s)\n", log.c_str());
    detail::HostMonitor monitor;
    const int code = detail::run_process(argv, log, log + ".stderr");
    if (code != 0)
      throw std::runtime_error("plait sweep: calibration failed (exit " + std::to_string(code) +
                               "): " + detail::last_words(log + ".stderr") + " [" + detail::join_command(argv) + "]");
    const detail::BusiestWindow busiest = detail::busiest_window(monitor.stop(), calibration_window_s);
    const bool steady = busiest.foreign_cores <= calibration_foreign_cores;
    attempts.push_back({busiest.foreign_cores, busiest.start_s, steady});
    write_text_file(options.output_dir + "/calibration-steadiness.json", detail::dump_calibration_attempts(attempts));
    if (steady || attempt == max_calibration_attempts) break;
    if (options.progress)
      std::fprintf(stderr, "the calibration met other work (%.2f cores for %.0f s from %.0f s in): calibrating again\n",
                   busiest.foreign_cores, calibration_window_s, busiest.start_s);
  }
  fs::rename(profile + ".partial", profile);  // a half-written profile is never resumed from
}

// What DIR/calibration-steadiness.json says (nothing when the profile was not made here).
void read_calibration_steadiness(const std::string& dir, SweepSummary& summary) {
  const std::string path = dir + "/calibration-steadiness.json";
  if (!fs::exists(path)) return;
  const auto attempts = detail::parse_calibration_attempts(read_text_file(path), path);
  summary.calibration_attempts = int(attempts.size());
  summary.calibration_steady = attempts.back().steady;
  summary.calibration_busiest_cores = attempts.back().busiest_foreign_cores;
}

// The kernel model fitted on the CSV's rows, with its k-fold check:
// DIR/fit.md (parameters, held-out error tables) and DIR/held-out.csv.
void calibrate_from_steps(const SweepSpec& spec, const SweepOptions& options, const std::string& profile) {
  const std::string dir = options.output_dir;
  std::vector<std::string> argv = {options.plait_binary, "calibrate", "--from-steps", spec.steps_csv, "--platform",
                                   spec.points.front().platform, "--folds", "5", "--report", dir + "/fit.md",
                                   "--predictions", dir + "/held-out.csv", "-o", profile + ".partial"};
  argv.insert(argv.end(), spec.calibrate_args.begin(), spec.calibrate_args.end());
  const std::string log = dir + "/calibrate.log";
  if (options.progress) std::fprintf(stderr, "fitting the kernel model on %s (%s)\n", spec.steps_csv.c_str(), log.c_str());
  const int code = detail::run_process(argv, log, log + ".stderr");
  if (code != 0)
    throw std::runtime_error("plait sweep: calibrate --from-steps failed (exit " + std::to_string(code) +
                             "): " + detail::last_words(log + ".stderr") + " [" + detail::join_command(argv) + "]");
  fs::rename(profile + ".partial", profile);
}

// DIR/held-out.csv (calibrate --predictions): line -> held-out seconds.
std::map<int, double> read_held_out(const std::string& path) {
  std::map<int, double> by_line;
  if (!fs::exists(path)) return by_line;
  const auto rows = detail::split_csv(read_text_file(path), path);
  if (rows.empty()) return by_line;
  const auto& header = rows.front();
  const auto column = [&](const char* name) {
    const auto found = std::find(header.begin(), header.end(), name);
    if (found == header.end()) throw Error(path, std::string("has no column \"") + name + "\"");
    return std::size_t(found - header.begin());
  };
  const std::size_t line = column("line"), predicted = column("held_out_predicted_ms");
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto number = rows[i].size() == header.size() ? number_of_field(rows[i][predicted]) : std::nullopt;
    const auto line_number = rows[i].size() == header.size() ? number_of_field(rows[i][line]) : std::nullopt;
    if (!number || !line_number) throw Error(path + ": row " + std::to_string(i), "is not a line and a time");
    by_line[int(*line_number)] = *number / 1e3;
  }
  return by_line;
}

// Rows of the points done so far, in spec order; saved at most once a second and at the end.
class ResultTable {
 public:
  ResultTable(const SweepSpec& spec, std::string path) : rows_(spec.points.size()), path_(std::move(path)) {
    if (!fs::exists(path_)) return;
    for (PointResult& old : parse_results_csv(read_text_file(path_), path_)) {
      for (std::size_t i = 0; i < spec.points.size(); ++i) {
        PointConfig key = spec.points[i];
        key.model.mlp_ratio = old.config.model.mlp_ratio;
        key.model.dtype = old.config.model.dtype;
        if (key == old.config && !rows_[i]) {
          old.config = spec.points[i];
          rows_[i] = old;
        }
      }
    }
  }
  bool has(std::size_t i) const { return rows_[i].has_value(); }
  // Saved at most every second (a sweep of a thousand quick points would
  // spend its time rewriting the file), and by save().
  void set(std::size_t i, const PointResult& row) {
    std::lock_guard lock(mutex_);
    rows_[i] = row;
    if (std::chrono::steady_clock::now() - saved_ >= std::chrono::seconds(1)) save_locked();
  }
  void save() {
    std::lock_guard lock(mutex_);
    save_locked();
  }
  std::vector<PointResult> done() const {
    std::vector<PointResult> out;
    for (const auto& row : rows_)
      if (row) out.push_back(*row);
    return out;
  }

 private:
  void save_locked() {
    write_text_file(path_ + ".partial", dump_results_csv(done()));
    fs::rename(path_ + ".partial", path_);
    saved_ = std::chrono::steady_clock::now();
  }
  std::vector<std::optional<PointResult>> rows_;
  std::string path_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point saved_{};
};

void finish(PointResult& row) {
  if (row.predicted_time_s && row.measured_time_s && *row.measured_time_s > 0)
    row.relative_error = *row.predicted_time_s / *row.measured_time_s - 1;
  if (row.predicted_speedup && row.measured_speedup && *row.measured_speedup > 0)
    row.speedup_error = *row.predicted_speedup / *row.measured_speedup - 1;
  if (row.status.empty()) row.status = row.measured_time_s ? "ok" : "predicted";
}

// `name` in --tools DIR (else next to plait) when it is there, else "" (found on PATH).
std::string tool_path(const SweepOptions& options, const std::string& name) {
  const fs::path dir = options.tools_dir.empty() ? fs::path(options.plait_binary).parent_path()
                                                 : fs::path(options.tools_dir);
  const fs::path tool = dir / name;
  return fs::exists(tool) ? tool.string() : "";
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::string spec_text = read_text_file(options.spec_path);
  const SweepSpec spec = parse_sweep_spec(spec_text, options.spec_path);
  if (options.plait_binary.empty()) throw Error("plait sweep", "no plait binary to run");
  claim_directory(options, spec_text);
  // plait calibrate finds plait-bench and plait-exec next to plait or on PATH.
  if (!options.tools_dir.empty()) {
    const char* path = std::getenv("PATH");
    ::setenv("PATH", (options.tools_dir + ":" + (path ? path : "")).c_str(), 1);
  }

  std::optional<detail::Disturbance> disturbance;
  if (options.disturb) disturbance.emplace(options.disturb->first, options.disturb->second);

  detail::Tools tools;
  tools.plait = options.plait_binary;
  tools.plait_exec = tool_path(options, "plait-exec");
  tools.mpirun = options.mpirun;
  tools.profile = spec.profile;
  if (spec.calibrate) {
    tools.profile = options.output_dir + "/profile.json";
    if (!fs::exists(tools.profile))
      spec.steps_csv.empty() ? calibrate(spec, options, tools.profile)
                             : calibrate_from_steps(spec, options, tools.profile);
  }
  const std::map<int, double> held_out = read_held_out(options.output_dir + "/held-out.csv");
  const int cores = options.cores > 0 ? options.cores : int(std::max(1u, std::thread::hardware_concurrency()));

  ResultTable table(spec, options.output_dir + "/results.csv");
  std::vector<std::size_t> pending;
  int resumed = 0;
  for (std::size_t i = 0; i < spec.points.size(); ++i) {
    if (table.has(i)) ++resumed;
    else pending.push_back(i);
  }

  // Predictions, `jobs` processes at a time; unmeasured points are done here.
  std::vector<PointResult> rows(spec.points.size());
  std::vector<std::size_t> to_measure;
  std::mutex measure_mutex;
  const auto will_measure = [&](const PointConfig& c) { return spec.measure && devices(c) <= cores; };
  std::size_t measured_total = 0;
  for (std::size_t i : pending) measured_total += will_measure(spec.points[i]) ? spec.measure->repeats : 0;
  detail::Progress progress(options.progress, pending.size() + measured_total);
  std::atomic<std::size_t> next{0};
  const auto predict_worker = [&] {
    for (std::size_t k = next++; k < pending.size(); k = next++) {
      const std::size_t i = pending[k];
      PointResult& row = rows[i];
      row.config = spec.points[i];
      const std::string dir = options.output_dir + "/points/" + point_name(row.config);
      try {
        fs::create_directories(dir);
        const schedule::Program program = detail::build_point_program(row.config);
        schedule::save_program(program, dir + "/program.json");
        double fullest = 0;
        for (const schedule::RankMemory& rank : schedule::estimate_memory(program))
          fullest = std::max(fullest, double(rank.total()));
        row.predicted_memory_bytes = fullest;
      } catch (const std::exception& error) {
        row.status = "build_failed";
        row.error = error.what();
      }
      if (row.status.empty()) {
        try {
          detail::predict_point(tools, dir, row);
        } catch (const std::exception& error) {
          row.status = "predict_failed";
          row.error = error.what();
        }
      }
      if (!spec.recorded_time_s.empty()) {  // measured already: the CSV's row
        row.measured_time_s = spec.recorded_time_s[i];
        if (const auto found = held_out.find(source_line(row.config)); found != held_out.end())
          row.held_out_s = found->second;
      }
      if (row.status.empty() && will_measure(row.config)) {
        std::lock_guard lock(measure_mutex);
        to_measure.push_back(i);
      } else {
        if (will_measure(row.config)) progress.step("skipped");
        finish(row);
        table.set(i, row);
      }
      progress.step("predicted " + point_name(row.config));
    }
  };
  std::vector<std::thread> workers;
  for (int j = 0; j < std::max(1, options.jobs); ++j) workers.emplace_back(predict_worker);
  for (auto& worker : workers) worker.join();

  // Measurements: one run at a time, nothing else running (timing needs the
  // cores), in rounds: run r of every point, then run r + 1. This VM's speed
  // drifts over tens of seconds in ways the speed probe does not catch all of;
  // a point's runs a round apart meet different moments, and their median
  // drops the one that met a slow one (back to back, all five met it).
  std::sort(to_measure.begin(), to_measure.end());
  // One stage of a point's measurement; the first that fails ends it.
  const auto measure_stage = [&](PointResult& row, const auto& stage) {
    if (!row.status.empty()) return;
    try {
      stage(options.output_dir + "/points/" + point_name(row.config));
    } catch (const std::exception& error) {
      row.status = "measure_failed";
      row.error = error.what();
    }
  };
  const int repeats = spec.measure ? spec.measure->repeats : 0;
  std::map<std::size_t, std::vector<detail::RunRecord>> records;  // per point, its runs so far
  const auto measure_once = [&](std::size_t i, int run) {
    PointResult& row = rows[i];
    measure_stage(row, [&](const std::string& dir) {
      detail::measure_run(tools, *spec.measure, dir, row.config, run);
      records[i].push_back(detail::judge_measured_run(dir, run));
    });
  };
  for (int run = 0; run < repeats; ++run)
    for (std::size_t i : to_measure) {
      measure_once(i, run);
      progress.step("measured " + point_name(rows[i].config) + " (run " + std::to_string(run + 1) + "/" +
                    std::to_string(repeats) + ")");
    }
  // More rounds, only for the points whose runs met other work or spread too far.
  for (int run = repeats; spec.measure && run < spec.measure->run_limit(); ++run) {
    std::vector<std::size_t> again;
    for (std::size_t i : to_measure)
      if (rows[i].status.empty() && detail::wants_another_run(records[i], *spec.measure)) again.push_back(i);
    if (again.empty()) break;
    progress.add(again.size());
    for (std::size_t i : again) {
      measure_once(i, run);
      progress.step("measured " + point_name(rows[i].config) + " again (run " + std::to_string(run + 1) + ")");
    }
  }
  for (std::size_t i : to_measure) {
    PointResult& row = rows[i];
    const detail::CountedRuns counted = detail::counted_runs(records[i], *spec.measure);
    measure_stage(row, [&](const std::string& dir) {
      detail::evaluate_point(tools, *spec.measure, dir, counted.indices, row);
    });
    row.runs = int(records[i].size());
    row.disturbed_runs = int(std::count_if(records[i].begin(), records[i].end(),
                                           [](const detail::RunRecord& run) { return !run.steady; }));
    if (row.status.empty() && !counted.steady) {
      row.status = "unsteady";
      row.error = counted.why_unsteady;
    }
    finish(row);
    table.set(i, row);
  }
  progress.done();
  table.save();

  const std::vector<PointResult> results = table.done();
  SweepSummary summary = summarize_results(results);
  for (const PointResult& row : results)
    summary.extra_runs += std::max(0, row.runs.value_or(0) - repeats);
  summary.resumed = resumed;
  read_calibration_steadiness(options.output_dir, summary);
  summary.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary.report_path = options.output_dir + "/report.md";
  const std::vector<std::string> plots = detail::write_plots(options.output_dir, results);
  write_text_file(summary.report_path, detail::format_report(spec, results, summary, plots, tools.profile));
  return summary;
}

}  // namespace plait::experiments
