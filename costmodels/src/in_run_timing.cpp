// In-run timings of a calibration (see detail/in_run_timing.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/in_run_timing.hpp"
#include "detail/temporary_file.hpp"
#include "plait/costmodels/costmodels.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels::detail {
namespace {

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

InRun run_traced(const InRunSetup& setup, const std::string& program, int ranks, const std::string& what) {
  std::vector<std::string> options = {"--steps", "10", "--warmup", "1", "--speed-probe", "--json"};
  if (ranks > 1) options.push_back("--no-serial");  // the serial step is timed on 1 rank
  TracedRun traced = run_exec_traced(setup, program, ranks, std::move(options), what);
  InRun run;
  const auto report = nlohmann::json::parse(traced.last_line, nullptr, false);
  const std::vector<double> probes = read_speed_probes(report, "the output of plait-exec (" + what + ")");
  run.probe_s = mean_speed_probe(probes);
  std::vector<traces::Event> events = std::move(traced.events);
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
IdleSlowdown fit_idle(const std::vector<InRun>& runs) {
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
std::map<std::string, double> key_means(const InRun& run, const IdleSlowdown& idle) {
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
// rank and on 2 ranks, `in_run_repeats` runs each, interleaved in rounds
// over the shapes. The mean duration of each op in a run is what it costs there: an op inside
// a run is not the op in a benchmark loop (the working set of many blocks and
// kept graphs, a co-running rank, MPI progress polling): these durations are
// the ops' alone (1 rank) and contended (2 ranks) timings. This VM's cores
// change speed by up to 40 % within a minute, so each run's durations are
// scaled by the median speed probe over the runs of its rank count divided by
// its own probe, before the median over runs; the median probes are the
// shape's speed reference (the speed these timings hold at). The 2-rank
// runs, where ranks wait for each other, also give the idle slowdown.
constexpr int in_run_repeats = 5;

schedule::BuildSpec in_run_spec(const schedule::ModelDesc& shape, int ranks) {
  schedule::BuildSpec spec;
  spec.layers = 16;
  spec.ranks = ranks;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
  // Two adjoint iterations: the fine adjoint relaxation steps on kept graphs (block.adj).
  spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
  spec.model = shape;
  return spec;
}

}  // namespace

TracedRun run_exec_traced(const InRunSetup& setup, const std::string& program, int ranks,
                          std::vector<std::string> options, const std::string& what) {
  TemporaryFile trace{temporary_path("traced-run")};
  std::vector<std::string> argv = setup.mpirun(ranks);
  argv.insert(argv.end(), {setup.exec_binary, program});
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {"--device", setup.device, "--threads", std::to_string(setup.threads), "--trace", trace.path});
  ChildProcess child(argv, /*capture_stdout=*/true);
  TracedRun run;
  for (std::string line; child.read_line(line);)
    if (!line.empty()) run.last_line = line;
  child.wait_successfully("mpirun plait-exec (" + what + ")");
  run.events = traces::load_trace(trace.path).events;
  return run;
}

InRunTimings measure_in_run(const InRunSetup& setup, const std::vector<schedule::ModelDesc>& shapes,
                            std::vector<OpMeasurement>& ops) {
  InRunTimings timings;
  int done = 0;
  const int total = static_cast<int>(shapes.size()) * in_run_repeats * 2;
  // In rounds (run r of every shape and rank count, then r + 1): a slow
  // stretch of this VM then meets one run of each shape, which the median
  // over runs drops, not every run of one shape, which would price it slow.
  std::vector<std::map<int, std::vector<InRun>>> runs(shapes.size());  // per shape, by rank count
  std::vector<std::map<int, TemporaryFile>> programs(shapes.size());
  for (std::size_t s = 0; s < shapes.size(); ++s)
    for (int ranks : {1, 2}) {
      const std::string stem = "in-run-program-" + std::to_string(s) + "-" + std::to_string(ranks);
      programs[s].emplace(ranks, TemporaryFile{temporary_path(stem)});
      schedule::save_program(schedule::build_mgrit(in_run_spec(shapes[s], ranks)), programs[s].at(ranks).path);
    }
  for (int run = 0; run < in_run_repeats; ++run)
    for (std::size_t s = 0; s < shapes.size(); ++s)
      for (int ranks : {1, 2}) {
        setup.on_progress(done++, total);
        runs[s][ranks].push_back(run_traced(setup, programs[s].at(ranks).path, ranks,
                                            "in-run timing of " + shape_name(shapes[s]) + " on " +
                                                std::to_string(ranks) + " rank(s)"));
      }
  for (std::size_t s = 0; s < shapes.size(); ++s) {
    const schedule::ModelDesc& shape = shapes[s];
    SpeedReference reference{shape, 0, 0, fit_idle(runs[s][2])};
    for (auto& [ranks, list] : runs[s]) {
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
      if (ranks == 1 && !serial.empty()) timings.serial_steps.emplace_back(shape, timing_of(serial).median_s);
    }
    timings.references.push_back(reference);
  }
  setup.on_progress(done, total);
  return timings;
}

void set_serial_factors(Profile& profile, const std::vector<SerialStep>& serial_steps) {
  const auto pricer = make_profile_pricer(profile, Contention::alone);
  for (const auto& [shape, measured_s] : serial_steps) {
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

}  // namespace plait::costmodels::detail
