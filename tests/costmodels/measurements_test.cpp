#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "plait/costmodels/calibration.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

using nlohmann::json;

json iteration(const std::string& name, double real_time, const std::string& unit) {
  return {{"name", name}, {"run_name", name}, {"run_type", "iteration"}, {"iterations", 10},
          {"real_time", real_time}, {"cpu_time", real_time}, {"time_unit", unit}};
}

TEST(SpeedProbe, OnePerRankAndTheMeanForARankThatDidNotProbe) {
  // Rank 2 had no block.fwd op (-1): it gets the mean of the others.
  const std::vector<double> probes = read_speed_probes(json::parse(R"({"speed_probe_s": [1e-4, 3e-4, -1]})"), "r.json");
  ASSERT_EQ(probes.size(), 3u);
  EXPECT_DOUBLE_EQ(probes[0], 1e-4);
  EXPECT_DOUBLE_EQ(probes[1], 3e-4);
  EXPECT_DOUBLE_EQ(probes[2], 2e-4);
  EXPECT_DOUBLE_EQ(mean_speed_probe(probes), 2e-4);
  for (const char* text : {R"({"ranks": 2})", R"({"speed_probe_s": [-1, -1]})", R"({"speed_probe_s": 1e-4})"}) {
    try {
      read_speed_probes(json::parse(text), "r.json");
      ADD_FAILURE() << "expected an error for " << text;
    } catch (const Error& error) {
      EXPECT_EQ(std::string(error.what()), "r.json: has no speed_probe_s (a plait-exec run without --speed-probe?)");
    }
  }
}

TEST(BenchmarkResults, AveragesRepetitionsAndConvertsUnits) {
  const std::string name = "block.fwd/d256.h4.s128.b8.r4.fp32.causal";
  json document = {{"context", {{"torch_version", "1.13.1"}}}, {"benchmarks", json::array()}};
  document["benchmarks"].push_back(iteration(name, 10, "ms"));
  document["benchmarks"].push_back(iteration(name + "/real_time", 12000, "us"));
  document["benchmarks"].push_back({{"name", name + "_mean"}, {"run_name", name},
                                    {"run_type", "aggregate"}, {"real_time", 99},
                                    {"time_unit", "ms"}});
  document["benchmarks"].push_back(iteration("device.gemm/n1000", 20, "ms"));
  document["benchmarks"].push_back(iteration("device.stream/mib64/real_time", 4, "ms"));
  json failed = iteration("block.adj/d256.h4.s128.b8.r4.fp32.causal", 0, "ms");
  failed["error_occurred"] = true;
  failed["error_message"] = "out of memory";
  document["benchmarks"].push_back(failed);

  const BenchResults results = read_benchmark_results(document.dump(), "bench.json");
  ASSERT_EQ(results.ops.size(), 1u);
  EXPECT_EQ(results.ops[0].key, "block.fwd");
  EXPECT_EQ(results.ops[0].shape.d_model, 256);
  EXPECT_DOUBLE_EQ(results.ops[0].alone.mean_s, 0.011);
  EXPECT_DOUBLE_EQ(results.ops[0].alone.median_s, 0.011);
  EXPECT_DOUBLE_EQ(results.ops[0].alone.min_s, 0.010);
  EXPECT_NEAR(results.ops[0].alone.stddev_s, 0.0014142135623730952, 1e-12);
  EXPECT_EQ(results.ops[0].alone.repetitions, 2);
  EXPECT_DOUBLE_EQ(*results.peak_flops, 2e9 / 20e-3);
  EXPECT_DOUBLE_EQ(*results.memory_bandwidth, 2 * 64 * 1048576 / 4e-3);
  EXPECT_EQ(results.torch_version, "1.13.1");
  ASSERT_EQ(results.failures.size(), 1u);
  EXPECT_EQ(results.failures[0].message, "out of memory");
}

TEST(BenchmarkResults, ReadsCpuTimeWhenAsked) {
  json entry = iteration("vec.sub/d128.h2.s64.b4.r4.fp32.causal", 30, "us");
  entry["cpu_time"] = 20;  // the other 10 us went to other processes
  const json document = {{"benchmarks", {entry}}};
  EXPECT_DOUBLE_EQ(read_benchmark_results(document.dump(), "b.json").ops[0].alone.median_s, 30e-6);
  EXPECT_DOUBLE_EQ(
      read_benchmark_results(document.dump(), "b.json", BenchClock::cpu).ops[0].alone.median_s,
      20e-6);
}

TEST(BenchmarkResults, RejectsUnknownTimeUnitsAndBadNames) {
  json document = {{"benchmarks", {iteration("block.fwd/d256.h4.s128.b8.r4.fp32.causal", 1, "min")}}};
  try {
    read_benchmark_results(document.dump(), "bench.json");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              "bench.json: /benchmarks/0/time_unit: wrong unit \"min\" (ns, us, ms or s)");
  }
  document = {{"benchmarks", {iteration("block.fwd/d256", 1, "ms")}}};
  EXPECT_THROW(read_benchmark_results(document.dump(), "bench.json"), Error);
}

TEST(BenchmarkResults, ContendedTimingsPoolBothRuns) {
  const auto shape = parse_shape_name("d128.h2.s64.b4.r4.fp32.causal");
  std::vector<OpMeasurement> ops = {{"block.fwd", shape, {1.0, 1.0, 0.9, 0.0, 2}, std::nullopt}};
  const std::vector<OpMeasurement> first = {{"block.fwd", shape, {1.1, 1.1, 1.05, 0.0, 2}, std::nullopt}};
  const std::vector<OpMeasurement> second = {{"block.fwd", shape, {1.3, 1.3, 1.2, 0.0, 2}, std::nullopt}};
  add_contended(ops, first, second);
  ASSERT_TRUE(ops[0].contended.has_value());
  EXPECT_DOUBLE_EQ(ops[0].contended->mean_s, 1.2);
  EXPECT_DOUBLE_EQ(ops[0].contended->median_s, 1.2);
  EXPECT_DOUBLE_EQ(ops[0].contended->min_s, 1.05);
  EXPECT_NEAR(ops[0].contended->stddev_s, 0.1, 1e-12);
  EXPECT_EQ(ops[0].contended->repetitions, 4);
}

TEST(PingpongResults, FitsTheMessageModel) {
  json document = {{"format", "plait.pingpong"}, {"version", 1}, {"ranks", 2},
                   {"pingpong", json::array()}, {"allreduce", json::array()}};
  for (std::int64_t bytes = 8; bytes <= (1 << 20); bytes *= 4) {
    const double seconds = bytes <= 512 ? 0.4e-6 + bytes * 1e-10 : 3.5e-6 + bytes / 7e9;
    document["pingpong"].push_back(
        {{"bytes", bytes}, {"mean_s", 2 * seconds}, {"median_s", 1.5 * seconds},
         {"min_s", seconds}, {"stddev_s", 0}, {"repetitions", 5}});
  }
  document["allreduce"].push_back(
      {{"bytes", 8}, {"mean_s", 1e-6}, {"median_s", 1e-6}, {"min_s", 1e-6}, {"stddev_s", 0},
       {"repetitions", 5}});
  const NetworkProfile network = read_pingpong_results(document.dump(), "pp.json");
  EXPECT_EQ(network.pingpong.size(), 9u);
  ASSERT_EQ(network.model.segments.size(), 2u);
  EXPECT_EQ(network.model.segments[0].max_bytes, 512);
  EXPECT_NEAR(network.model.seconds(1 << 20), 3.5e-6 + (1 << 20) / 7e9, 1e-9);

  document["pingpong"][2]["median_s"] = -1;
  try {
    read_pingpong_results(document.dump(), "pp.json");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "pp.json: /pingpong/2/median_s: negative time (-1)");
  }
}

TEST(CalibrationCheck, ReportsMedianAndMaxRelativeError) {
  Profile profile;
  profile.device = {"local-cpu", 100e9, 0, 10e9, 0.5};
  profile.fits["block.fwd"] = {0.5, 0, 1};
  std::vector<OpMeasurement> held_out;
  const double errors[] = {0.1, 0.02, -0.3};  // predicted = measured * (1 + e)
  int i = 0;
  for (const char* name : {"d128.h2.s64.b4.r4.fp32.causal", "d192.h3.s96.b4.r4.fp32.causal",
                           "d256.h4.s32.b2.r4.fp32.causal"}) {
    const auto shape = parse_shape_name(name);
    const double predicted =
        roofline_seconds(transformer_work(shape).at("block.fwd"), profile.device, "fp32") / 0.5;
    const double measured = predicted / (1 + errors[i++]);
    held_out.push_back({"block.fwd", shape, {measured, measured, measured, 0, 1}, std::nullopt});
  }
  const CheckReport report = check_profile_model(profile, held_out);
  ASSERT_EQ(report.rows.size(), 3u);
  EXPECT_NEAR(report.median_relative_error, 0.1, 1e-12);
  EXPECT_NEAR(report.max_relative_error, 0.3, 1e-12);
}

}  // namespace
}  // namespace plait::costmodels
