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
// device probes: "device.gemm/n<size>" (counter "flop_rate", FLOP/s) and
// "device.stream/mib<size>" (counter "bytes_per_second").
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

// Parses Google Benchmark JSON (its "benchmarks" iteration entries; real_time in
// its time_unit). Throws plait::Error naming `origin` and the JSON pointer.
BenchResults read_benchmark_results(const std::string& text, const std::string& origin);

// Two runs of the same benchmarks at once: `contended` becomes each op's
// contended timing (matched by key and shape; the mean of both runs' timings).
void add_contended(std::vector<OpMeasurement>& ops, const std::vector<OpMeasurement>& first,
                   const std::vector<OpMeasurement>& second);

// `plait-exec pingpong` output: {"format": "plait.pingpong", "version": 1, "ranks",
// "pingpong": [{"bytes", "mean_s", "median_s", "stddev_s", "repetitions"}], "allreduce": [...]};
// the result's model is fitted (fit_message_model) to the median ping-pong times.
NetworkProfile read_pingpong_results(const std::string& text, const std::string& origin);

}  // namespace plait::costmodels
