// The calibration driver: measuring processes, then the fit (see calibration.hpp).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "detail/child_process.hpp"
#include "detail/gradient_exchange.hpp"
#include "detail/in_run_timing.hpp"
#include "detail/temporary_file.hpp"
#include "plait/costmodels/calibration.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::costmodels {
namespace {

using Clock = std::chrono::steady_clock;

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
    std::vector<detail::SerialStep> serial_steps;
    std::vector<MessageMeasurement> gradient_allreduce;
    if (in_run()) {
      const auto setup = [this](const std::string& stage) {
        return detail::InRunSetup{options_.exec_binary, options_.device, options_.threads,
                                  [this](int ranks) { return mpirun(ranks); },
                                  [this, stage](int done, int total) { report(stage, done, total); }};
      };
      detail::InRunTimings timings = detail::measure_in_run(setup("in-run"), options_.shapes, profile.ops);
      gradient_allreduce = detail::measure_gradient_allreduce(setup("gradient all-reduce"), options_.shapes.front());
      profile.speed_references = std::move(timings.references);
      serial_steps = std::move(timings.serial_steps);
    }
    fit_profile(profile);
    detail::set_serial_factors(profile, serial_steps);
    if (options_.check) result.check = check_profile_model(profile, held_out);

    if (!options_.pingpong_json.empty()) {
      profile.network = read_pingpong_results(read_text_file(options_.pingpong_json),
                                              options_.pingpong_json);
    } else if (options_.network) {
      profile.network = run_pingpong();
    }
    if (profile.network && !gradient_allreduce.empty()) {
      std::vector<MessageSample> exchanges;
      for (const MessageMeasurement& measured : gradient_allreduce) exchanges.push_back({measured.bytes, measured.time.median_s});
      profile.network->gradient_allreduce = std::move(gradient_allreduce);
      profile.network->gradient_pass_bytes_per_s = fit_gradient_pass(profile.network->model, exchanges, 2);
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
    std::vector<detail::TemporaryFile> outputs;
    std::vector<std::unique_ptr<detail::ChildProcess>> children;
    for (int copy = 0; copy < copies; ++copy) {
      outputs.push_back({detail::temporary_path(stage + std::to_string(copy))});
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

  NetworkProfile run_pingpong() {
    detail::TemporaryFile output{detail::temporary_path("pingpong")};
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
};

}  // namespace

CalibrationResult calibrate(const CalibrationOptions& options) {
  return Calibration(options).run();
}

}  // namespace plait::costmodels
