// Reading what the measuring binaries print: plait-bench's Google Benchmark
// JSON and `plait-exec pingpong`'s JSON. Shared by plait-bench (names) and
// plait calibrate (parsing), so both agree on one naming scheme.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plait/costmodels/profile.hpp"

namespace plait::costmodels {

// Benchmark names: "<cost key>/<shape name>", e.g. "block.fwd/d256.h4.s128.b8.r4.fp32.causal";
// device probes: "device.gemm/n<N>" (an N x N fp32 GEMM: 2N^3 FLOPs) and
// "device.stream/mib<M>" (a copy of M MiB: 2M MiB moved); rates from their times.
std::string benchmark_name(std::string_view key, const schedule::ModelDesc& shape);
// The compute cost keys plait-bench measures at every shape.
std::vector<std::string_view> benchmarked_keys();
inline constexpr std::string_view gemm_probe = "device.gemm";
inline constexpr std::string_view stream_probe = "device.stream";

struct BenchFailure {
  std::string name;
  std::string message;
};

struct BenchResults {
  std::vector<OpMeasurement> ops;  // `alone` filled: mean/stddev over repetitions
  std::optional<double> peak_flops;       // from device.gemm
  std::optional<double> memory_bandwidth; // from device.stream
  std::vector<BenchFailure> failures;     // benchmarks that reported an error
  std::string torch_version;              // context "torch_version", if present
};

// Which of Google Benchmark's times to read. `cpu` (the benchmark thread's CPU
// time) is right for one-thread CPU runs on a shared machine: it leaves out the
// time the OS gave other processes, and equals wall time on an idle machine.
enum class BenchClock { wall, cpu };
std::string_view to_string(BenchClock clock);  // "real_time" or "cpu_time"

// Parses Google Benchmark JSON (its "benchmarks" iteration entries, times in
// their time_unit). Throws plait::Error naming `origin` and the JSON pointer.
BenchResults read_benchmark_results(const std::string& text, const std::string& origin,
                                    BenchClock clock = BenchClock::wall);

// Two runs of the same benchmarks at once: `contended` becomes each op's
// contended timing (matched by key and shape; the mean of both runs' timings).
void add_contended(std::vector<OpMeasurement>& ops, const std::vector<OpMeasurement>& first,
                   const std::vector<OpMeasurement>& second);

// The speed probes of a `plait-exec --speed-probe --json` report, one per rank
// ("speed_probe_s"): each rank's core runs at its own speed. A rank without a
// forward step reports -1 and gets the mean of the ranks that probed. Throws
// plait::Error naming `origin` when no rank has one.
std::vector<double> read_speed_probes(const nlohmann::json& report, const std::string& origin);
double mean_speed_probe(const std::vector<double>& probes);

// `plait-exec pingpong` output: {"format": "plait.pingpong", "version": 1, "ranks",
// "pingpong": [{"bytes", "mean_s", "median_s", "min_s", "stddev_s", "repetitions"}],
// "allreduce": [...]}; the model is fitted (fit_message_model) to the minimum times.
NetworkProfile read_pingpong_results(const std::string& text, const std::string& origin);

}  // namespace plait::costmodels
