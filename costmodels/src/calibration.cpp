// The calibration driver: measuring processes, then the fit (see calibration.hpp).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "plait/costmodels/calibration.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels {
namespace {

using Clock = std::chrono::steady_clock;

std::string temporary_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() /
          ("plait-calibrate-" + std::to_string(getpid()) + "-" + stem + ".json"))
      .string();
}

// Removes a file when the calibration leaves the scope that made it.
struct TemporaryFile {
  std::string path;
  ~TemporaryFile() { std::filesystem::remove(path); }
};

std::string joined_shape_names(const std::vector<schedule::ModelDesc>& shapes) {
  std::string names;
  for (const auto& shape : shapes) names += (names.empty() ? "" : ",") + shape_name(shape);
  return names;
}

// A console line of one finished benchmark repetition (not an aggregate row).
bool is_repetition_line(const std::string& line) {
  const std::string name = line.substr(0, line.find(' '));
  if (name.find('/') == std::string::npos) return false;
  for (const char* suffix : {"_mean", "_median", "_stddev", "_cv"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      return false;
    }
  }
  return true;
}

// `program` as given if it names a path, else found on PATH; throws `missing` if absent.
void require_executable(const std::string& program, const std::string& missing) {
  if (program.find('/') != std::string::npos) {
    if (access(program.c_str(), X_OK) == 0) return;
    throw Error("calibrate", missing);
  }
  const char* path = std::getenv("PATH");
  std::stringstream directories(path ? path : "");
  for (std::string directory; std::getline(directories, directory, ':');) {
    if (!directory.empty() && access((directory + "/" + program).c_str(), X_OK) == 0) return;
  }
  throw Error("calibrate", missing);
}

class Calibration {
 public:
  explicit Calibration(const CalibrationOptions& options)
      : options_(options), start_(Clock::now()) {}

  CalibrationResult run() {
    // Missing binaries are reported before minutes of measuring, not after.
    if (options_.bench_json.empty()) {
      require_executable(options_.bench_binary,
                         "plait-bench not found next to plait or on PATH (it is built with "
                         "PLAIT_WITH_TORCH=ON); --bench-json reads saved results instead");
    }
    if ((options_.pingpong_json.empty() && options_.network) || in_run()) {
      require_executable(options_.exec_binary,
                         "plait-exec not found next to plait or on PATH (it is built with "
                         "PLAIT_WITH_TORCH=ON and PLAIT_WITH_MPI=ON); use --pingpong-json or "
                         "--no-network");
      require_executable(options_.mpirun, options_.mpirun + " not found on PATH");
    }
    CalibrationResult result;
    // Fitted and held-out shapes interleaved: a drift in machine load hits both alike.
    std::vector<schedule::ModelDesc> measured;
    const auto& held = options_.check ? options_.check_shapes : std::vector<schedule::ModelDesc>{};
    for (std::size_t i = 0; i < std::max(options_.shapes.size(), held.size()); ++i) {
      if (i < options_.shapes.size()) measured.push_back(options_.shapes[i]);
      if (i < held.size()) measured.push_back(held[i]);
    }
    if (measured.empty() && options_.bench_json.empty()) {
      throw Error("calibrate", "no shapes to measure");
    }

    BenchResults alone;
    std::optional<BenchResults> second_alone;
    std::optional<std::pair<BenchResults, BenchResults>> contended;
    if (!options_.bench_json.empty()) {
      alone = read_benchmark_results(read_text_file(options_.bench_json), options_.bench_json, clock());
    } else {
      alone = run_bench(measured, "alone", 1).front();
      if (options_.contended) {
        // Every core busy with the same work; the first two copies' timings are kept.
        const int cores = static_cast<int>(std::thread::hardware_concurrency());
        const int copies = std::max(2, options_.contended_processes > 0
                                           ? options_.contended_processes
                                           : cores);
        auto runs = run_bench(measured, "contended", copies);
        contended.emplace(std::move(runs[0]), std::move(runs[1]));
      }
    }
    result.failures = alone.failures;
    if (contended) {
      add_contended(alone.ops, contended->first.ops, contended->second.ops);
      for (const auto* run : {&contended->first, &contended->second}) {
        result.failures.insert(result.failures.end(), run->failures.begin(), run->failures.end());
      }
    }

    Profile& profile = result.profile;
    profile.machine = describe_machine(options_.device, options_.threads, alone.torch_version);
    profile.device = device_sheet("local-cpu");
    if (alone.peak_flops) profile.device.peak_flops_fp32 = *alone.peak_flops;
    if (alone.memory_bandwidth) profile.device.memory_bandwidth = *alone.memory_bandwidth;
    std::vector<OpMeasurement> held_out;
    for (OpMeasurement& op : alone.ops) {
      const bool held = options_.check && is_in(op.shape, options_.check_shapes);
      if (held) {
        held_out.push_back(std::move(op));
      } else if (options_.shapes.empty() || is_in(op.shape, options_.shapes)) {
        profile.ops.push_back(std::move(op));
      }
    }
    if (profile.ops.empty()) throw Error("calibrate", "no measurements at the fitted shapes");
    if (in_run()) measure_in_run(profile.ops, profile.speed_references);
    fit_profile(profile);
    set_serial_factors(profile);
    if (options_.check) result.check = check_profile_model(profile, held_out);

    if (!options_.pingpong_json.empty()) {
      profile.network = read_pingpong_results(read_text_file(options_.pingpong_json),
                                              options_.pingpong_json);
    } else if (options_.network) {
      profile.network = run_pingpong();
    }
    if (profile.network) {
      std::vector<MessageSample> samples;
      for (const auto& message : profile.network->pingpong) {
        samples.push_back({message.bytes, message.time.min_s});
      }
      result.network_errors = message_model_errors(profile.network->model, samples);
    }
    result.seconds = elapsed();
    return result;
  }

 private:
  static bool is_in(const schedule::ModelDesc& shape, const std::vector<schedule::ModelDesc>& set) {
    for (const auto& other : set) {
      if (same_shape(shape, other)) return true;
    }
    return false;
  }

  BenchClock clock() const { return calibration_clock(options_.device, options_.threads); }

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  void report(const std::string& stage, int done, int total) const {
    if (options_.on_progress) options_.on_progress({stage, done, total, elapsed()});
  }

  // `copies` plait-bench processes at once over `shapes`; progress from the first.
  std::vector<BenchResults> run_bench(const std::vector<schedule::ModelDesc>& shapes,
                                      const std::string& stage, int copies) {
    const int total = (static_cast<int>(shapes.size() * benchmarked_keys().size()) + 2) *
                      options_.repetitions;
    std::vector<TemporaryFile> outputs;
    std::vector<std::unique_ptr<detail::ChildProcess>> children;
    for (int copy = 0; copy < copies; ++copy) {
      outputs.push_back({temporary_path(stage + std::to_string(copy))});
      std::ostringstream min_time;
      min_time << options_.min_time_s;
      const std::vector<std::string> argv = {
          options_.bench_binary,
          "--shapes=" + joined_shape_names(shapes),
          "--device=" + options_.device,
          "--threads=" + std::to_string(options_.threads),
          "--probes",
          "--benchmark_color=false",
          "--benchmark_out=" + outputs.back().path,
          "--benchmark_out_format=json",
          "--benchmark_repetitions=" + std::to_string(options_.repetitions),
          "--benchmark_min_time=" + min_time.str()};
      children.push_back(std::make_unique<detail::ChildProcess>(argv, copy == 0));
    }
    int done = 0;
    report(stage, done, total);
    for (std::string line; children.front()->read_line(line);) {
      if (is_repetition_line(line)) report(stage, ++done, total);
    }
    std::vector<BenchResults> results;
    for (int copy = 0; copy < copies; ++copy) {
      children[copy]->wait_successfully("plait-bench (" + stage + ")");
      const std::string& path = outputs[copy].path;
      results.push_back(
          read_benchmark_results(read_text_file(path), "plait-bench output " + path, clock()));
    }
    return results;
  }

  // Only in a full measurement (none of the ops or the network read from files).
  bool in_run() const {
    return options_.in_run && options_.network && options_.bench_json.empty() && options_.pingpong_json.empty() &&
           !options_.shapes.empty();
  }

  std::vector<std::string> mpirun(int ranks) const {
    std::vector<std::string> argv = {options_.mpirun, "-n", std::to_string(ranks)};
    if (options_.mpirun_flags) {
      const std::vector<std::string> flags = options_.mpirun_flags(ranks);
      argv.insert(argv.end(), flags.begin(), flags.end());
    } else if (geteuid() == 0) {
      argv.push_back("--allow-run-as-root");
      argv.push_back("--oversubscribe");
    }
    return argv;
  }

  // One traced run of `program` on `ranks` ranks with its speed probe.
  struct InRun {
    double probe_s = 0;  // the mean of the ranks' speed probes
    struct Op {
      std::string key;
      double seconds = 0;  // at the ranks' mean speed, scaled to the timed steps
      double idle_s = -1;  // block steps: since the rank's previous block step ended (-1: its first)
    };
    std::vector<Op> ops;  // compute ops of the traced step
    double serial_s = 0;  // 1 rank: the serial step (plait-exec's serial baseline)
    double serial_probe_s = 0;  // its own speed probe (plait-exec probes around it)
  };

  InRun run_traced(const std::string& program, int ranks, const std::string& what) {
    TemporaryFile trace{temporary_path("in-run-trace")};
    std::vector<std::string> argv = mpirun(ranks);
    argv.insert(argv.end(), {options_.exec_binary, program, "--steps", "10", "--warmup", "1", "--speed-probe",
                             "--json", "--device", options_.device, "--threads", std::to_string(options_.threads),
                             "--trace", trace.path});
    if (ranks > 1) argv.push_back("--no-serial");  // the serial step is timed on 1 rank
    detail::ChildProcess child(argv, /*capture_stdout=*/true);
    std::string last, line;
    while (child.read_line(line))
      if (!line.empty()) last = line;
    child.wait_successfully("mpirun plait-exec (" + what + ")");
    InRun run;
    const auto report = nlohmann::json::parse(last, nullptr, false);
    const std::vector<double> probes = read_speed_probes(report, "the output of plait-exec (" + what + ")");
    run.probe_s = mean_speed_probe(probes);
    std::vector<traces::Event> events = traces::load_trace(trace.path).events;
    std::sort(events.begin(), events.end(), [](const traces::Event& x, const traces::Event& y) {
      return std::pair{x.rank, x.start} < std::pair{y.rank, y.start};
    });
    double first_start = std::numeric_limits<double>::infinity(), last_end = -first_start;
    for (const traces::Event& event : events) {
      first_start = std::min(first_start, event.start);
      last_end = std::max(last_end, event.end);
    }
    // The traced step gives each op's share; the timed steps (back to back, as
    // a measurement runs them) the step's length: they run ~4 % longer than one
    // traced step, and the ops are scaled to match them.
    const double timed_s = report.contains("time_per_step_s") && report["time_per_step_s"].is_number()
                               ? report["time_per_step_s"].get<double>()
                               : 0;
    const double to_timed = timed_s > 0 && last_end > first_start ? timed_s / (last_end - first_start) : 1;
    if (report.contains("serial_time_per_step_s") && report["serial_time_per_step_s"].is_number())
      run.serial_s = report["serial_time_per_step_s"].get<double>();
    run.serial_probe_s = report.contains("serial_speed_probe_s") && report["serial_speed_probe_s"].is_number()
                             ? report["serial_speed_probe_s"].get<double>()
                             : run.probe_s;
    std::map<int, double> last_block_end;  // per rank
    for (const traces::Event& event : events) {
      if (event.peer >= 0 || event.bytes != 0 || event.rank < 0 || event.rank >= static_cast<int>(probes.size()))
        continue;
      InRun::Op op{event.cost_key, 0, -1};
      // Each rank's core has its own speed (on this VM up to ~30 % apart):
      // every op is scaled from its rank's probe to the ranks' mean.
      op.seconds = (event.end - event.start) * run.probe_s / probes[static_cast<std::size_t>(event.rank)] * to_timed;
      if (event.cost_key.starts_with("block.")) {
        if (auto found = last_block_end.find(event.rank); found != last_block_end.end())
          op.idle_s = event.start - found->second;
        last_block_end[event.rank] = event.end;
      }
      run.ops.push_back(std::move(op));
    }
    return run;
  }

  // Block steps after a wait run slower (IdleSlowdown): fitted on the steps of
  // all `runs`, each against its cost key's median duration in its run.
  static IdleSlowdown fit_idle(const std::vector<InRun>& runs) {
    std::vector<std::pair<double, double>> samples;
    for (const InRun& run : runs) {
      std::map<std::string, std::vector<double>> durations;
      for (const InRun::Op& op : run.ops) durations[op.key].push_back(op.seconds);
      std::map<std::string, double> medians;  // keys with >= 3 ops in the run
      for (const auto& [key, seconds] : durations)
        if (seconds.size() >= 3) medians[key] = timing_of(seconds).median_s;
      for (const InRun::Op& op : run.ops)
        if (auto found = medians.find(op.key); op.idle_s >= 0 && found != medians.end())
          samples.emplace_back(op.idle_s, op.seconds / found->second);
    }
    return fit_idle_slowdown(samples);
  }

  // Per cost key, the mean duration of its ops in `run`, each with the idle
  // slowdown it had taken out (the simulator adds it back where it idles).
  // The mean, not the median: a step costs the sum of its ops, and their
  // durations have a long right tail (block.fwd: mean 1.14x the median). But
  // a duration past 10x the key's median is the rank losing its core, not the
  // op: one such in 42 vec.zero ops (0.5 us each) had priced them at 8 us in
  // 2-rank runs. It counts as 10x the median.
  static std::map<std::string, double> key_means(const InRun& run, const IdleSlowdown& idle) {
    std::map<std::string, std::vector<double>> durations;
    for (const InRun::Op& op : run.ops) durations[op.key].push_back(op.seconds / idle.factor(op.idle_s));
    std::map<std::string, double> means;
    for (auto& [key, seconds] : durations) {
      if (seconds.size() < 3) continue;
      const double cap = 10 * timing_of(seconds).median_s;
      for (double& s : seconds) s = std::min(s, cap);
      means[key] = timing_of(seconds).mean_s;
    }
    return means;
  }

  // Per fitted shape: traced steps of a 16-layer, 2-level MGRIT Program on 1
  // rank and on 2 ranks, `in_run_repeats` runs each, interleaved. The mean
  // duration of each op in a run is what it costs there: an op inside
  // a run is not the op in a benchmark loop (the working set of many blocks and
  // kept graphs, a co-running rank, MPI progress polling): these durations are
  // the ops' alone (1 rank) and contended (2 ranks) timings. This VM's cores
  // change speed by up to 40 % within a minute, so each run's durations are
  // scaled by the median speed probe over the runs of its rank count divided by
  // its own probe, before the median over runs; the median probes are the
  // shape's speed reference (the speed these timings hold at). The 2-rank
  // runs, where ranks wait for each other, also give the idle slowdown.
  static constexpr int in_run_repeats = 5;

  static schedule::BuildSpec in_run_spec(const schedule::ModelDesc& shape, int ranks) {
    schedule::BuildSpec spec;
    spec.layers = 16;
    spec.ranks = ranks;
    spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
    // Two adjoint iterations: the fine adjoint relaxation steps on kept graphs (block.adj).
    spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
    spec.model = shape;
    return spec;
  }

  // The executor's serial step runs all blocks in one autograd graph, which
  // costs more than its blocks' steps do one at a time in a run (1.05x at
  // d64, 16 blocks): each shape's factor is its timed serial step over the
  // profile's price of it, on the block steps (the loss and the rest as priced).
  void set_serial_factors(Profile& profile) const {
    const auto pricer = make_profile_pricer(profile, Contention::alone);
    for (const auto& [shape, measured_s] : serial_steps_) {
      const schedule::Program serial = schedule::build_serial(in_run_spec(shape, 1));
      double block_s = 0, other_s = 0;
      for (const schedule::Section& section : serial.rank_programs.at(0).sections)
        for (const schedule::Op& op : section.ops) {
          (schedule::is_block_step(op.kind) ? block_s : other_s) += section.repeat * pricer->op_seconds(serial, op);
        }
      const double factor = (measured_s - other_s) / block_s;
      for (SpeedReference& reference : profile.speed_references)
        if (same_shape(reference.shape, shape) && factor > 0 && std::isfinite(factor)) reference.serial_factor = factor;
    }
  }

  void measure_in_run(std::vector<OpMeasurement>& ops, std::vector<SpeedReference>& references) {
    int done = 0;
    const int total = static_cast<int>(options_.shapes.size()) * in_run_repeats * 2;
    for (const schedule::ModelDesc& shape : options_.shapes) {
      std::map<int, std::vector<InRun>> runs;  // by rank count
      std::map<int, TemporaryFile> programs;
      for (int ranks : {1, 2}) {
        programs.emplace(ranks, TemporaryFile{temporary_path("in-run-program-" + std::to_string(ranks))});
        schedule::save_program(schedule::build_mgrit(in_run_spec(shape, ranks)), programs.at(ranks).path);
      }
      for (int run = 0; run < in_run_repeats; ++run) {
        for (int ranks : {1, 2}) {
          report("in-run", done++, total);
          runs[ranks].push_back(run_traced(programs.at(ranks).path, ranks,
                                           "in-run timing of " + shape_name(shape) + " on " +
                                               std::to_string(ranks) + " rank(s)"));
        }
      }
      SpeedReference reference{shape, 0, 0, fit_idle(runs[2])};
      for (auto& [ranks, list] : runs) {
        std::vector<double> probes;
        for (const InRun& run : list) probes.push_back(run.probe_s);
        const double speed = timing_of(probes).median_s;
        (ranks == 1 ? reference.alone_s : reference.contended_s) = speed;
        std::map<std::string, std::vector<double>> scaled;  // per cost key, one per run
        for (const InRun& run : list)
          for (const auto& [key, mean] : key_means(run, reference.idle))
            scaled[key].push_back(mean * speed / run.probe_s);
        for (OpMeasurement& op : ops) {
          auto found = scaled.find(op.key);
          if (!same_shape(op.shape, shape) || found == scaled.end()) continue;
          (ranks == 1 ? op.alone : op.contended.emplace()) = timing_of(found->second);
        }
        std::vector<double> serial;
        for (const InRun& run : list)
          if (run.serial_s > 0 && run.serial_probe_s > 0) serial.push_back(run.serial_s * speed / run.serial_probe_s);
        if (ranks == 1 && !serial.empty()) serial_steps_.emplace_back(shape, timing_of(serial).median_s);
      }
      references.push_back(reference);
    }
    report("in-run", done, total);
  }

  static Timing timing_of(std::vector<double> seconds) {
    std::sort(seconds.begin(), seconds.end());
    Timing timing;
    timing.repetitions = static_cast<int>(seconds.size());
    timing.min_s = seconds.front();
    const std::size_t n = seconds.size();
    timing.median_s = n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2;
    double sum = 0, squares = 0;
    for (double s : seconds) sum += s;
    timing.mean_s = sum / double(n);
    for (double s : seconds) squares += (s - timing.mean_s) * (s - timing.mean_s);
    timing.stddev_s = std::sqrt(squares / double(n));
    return timing;
  }

  NetworkProfile run_pingpong() {
    TemporaryFile output{temporary_path("pingpong")};
    std::vector<std::string> argv = mpirun(2);
    argv.insert(argv.end(), {options_.exec_binary, "pingpong", "--output", output.path});
    report("pingpong", 0, 1);
    detail::ChildProcess child(argv, /*capture_stdout=*/false);
    child.wait_successfully("mpirun plait-exec pingpong");
    report("pingpong", 1, 1);
    return read_pingpong_results(read_text_file(output.path), "plait-exec pingpong output");
  }

  const CalibrationOptions& options_;
  Clock::time_point start_;
  std::vector<std::pair<schedule::ModelDesc, double>> serial_steps_;  // per shape, at its alone speed reference
};

}  // namespace

CalibrationResult calibrate(const CalibrationOptions& options) {
  return Calibration(options).run();
}

}  // namespace plait::costmodels
