// The files costmodels reads (profiles; plait-bench and ping-pong output for
// plait calibrate): 10,000 mutated and truncated inputs each load or give one
// located plait::Error (see tests/support/loader_fuzz.hpp).
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "loader_fuzz.hpp"
#include "plait/costmodels/allreduce_fit.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"
#include "profile_fixture.hpp"

namespace plait::costmodels {
namespace {

// Every branch of the reader: iterations, an aggregate, a failed benchmark, both probes.
const char* const bench_output = R"({
  "context": {"torch_version": "1.13.0", "num_cpus": 2},
  "benchmarks": [
    {"name": "block.fwd/d128.h4.s64.b4.r4.fp32.causal/real_time", "run_type": "iteration",
     "real_time": 3245.1, "cpu_time": 1648.4, "time_unit": "us"},
    {"name": "block.fwd/d128.h4.s64.b4.r4.fp32.causal/real_time", "run_type": "iteration",
     "real_time": 3710.8, "cpu_time": 1710.3, "time_unit": "us"},
    {"name": "block.fwd/d128.h4.s64.b4.r4.fp32.causal/real_time", "run_type": "aggregate",
     "aggregate_name": "mean", "real_time": 3400.0, "cpu_time": 1700.0, "time_unit": "us"},
    {"run_name": "vec.copy/d128.h4.s64.b4.r4.fp32.causal", "real_time": 1.5e3, "cpu_time": 1.4e3,
     "time_unit": "ns"},
    {"name": "loss/d128.h4.s64.b4.r4.fp32.causal", "error_occurred": true, "error_message": "out of memory"},
    {"name": "device.gemm/n512", "real_time": 2.5, "cpu_time": 2.4, "time_unit": "ms"},
    {"name": "device.stream/mib64", "real_time": 0.01, "cpu_time": 0.01, "time_unit": "s"}
  ]
})";

using plait::testing::error_of;

TEST(LoadersFuzz, MutatedProfilesLoadOrGiveOneLocatedError) {
  const auto summary = plait::testing::fuzz_loader(dump_profile(testing::small_profile()), "p.json", 10000,
                                            [](const std::string& text) { parse_profile(text, "p.json"); });
  EXPECT_GT(summary.refused, 5000);
}

TEST(LoadersFuzz, MutatedBenchOutputLoadsOrGivesOneLocatedError) {
  ASSERT_EQ(error_of([] { read_benchmark_results(bench_output, "bench.json"); }), "no error");
  plait::testing::fuzz_loader(bench_output, "bench.json", 10000,
                       [](const std::string& text) { read_benchmark_results(text, "bench.json"); });
}

TEST(LoadersFuzz, MutatedPingpongOutputLoadsOrGivesOneLocatedError) {
  const std::string valid = read_text_file(PLAIT_COSTMODELS_DATA "/pingpong.json");
  plait::testing::fuzz_loader(valid, "pingpong.json", 10000,
                       [](const std::string& text) { read_pingpong_results(text, "pingpong.json"); });
}

TEST(LoadersFuzz, MutatedNcclTestsCsvLoadsOrGivesOneLocatedError) {
  const std::string valid =
      "size(B),count,type,time(ns),busbw(GB/s),time(ns),busbw(GB/s)\n"
      "1048576,262144,float,44210,23.72,45100,23.25\n"
      "2097152,524288,float,53430,39.25,51130,41.01\n"
      "16777216,4194304,float,232000,126.33,231000,126.9\n";
  plait::testing::fuzz_loader(valid, "ar.csv", 10000,
                              [](const std::string& text) { parse_allreduce_csv(text, 8, "ar.csv"); });
}

TEST(LoadersFuzz, MutatedStepCsvLoadsOrGivesOneLocatedError) {
  const std::string valid = read_text_file(PLAIT_COSTMODELS_DATA "/vtrain_steps_sample.csv");
  ASSERT_EQ(error_of([&] { parse_step_csv(valid, "steps.csv"); }), "no error");
  plait::testing::fuzz_loader(valid, "steps.csv", 10000, [](const std::string& text) { parse_step_csv(text, "steps.csv"); });
}

// What the fuzzer found, pinned.
TEST(LoadersFuzz, WrongTypesOfOptionalBenchMembersAreLocatedErrors) {
  std::string text = bench_output;
  text.replace(text.find("\"run_type\": \"aggregate\""), 23, "\"run_type\": 7");
  EXPECT_EQ(error_of([&] { read_benchmark_results(text, "bench.json"); }),
            "bench.json: /benchmarks/2/run_type: expected a string");
  text = bench_output;
  text.replace(text.find("\"error_occurred\": true"), 22, "\"error_occurred\": 1");
  EXPECT_EQ(error_of([&] { read_benchmark_results(text, "bench.json"); }).substr(0, 76),
            "bench.json: 3 problems: /benchmarks/4/error_occurred: expected true or false");
}

TEST(LoadersFuzz, IntegersAboveTheirTypeAreRefused) {
  std::string text = dump_profile(testing::small_profile());
  text.replace(text.find("\"d_model\": 256"), 14, "\"d_model\": 4294967552");
  EXPECT_EQ(error_of([&] { parse_profile(text, "p.json"); }),
            "p.json: /ops/0/shape/d_model: 4294967552 above the limit of 2147483647");
}

TEST(LoadersFuzz, NumberOverflowIsAnError) {
  std::string text = dump_profile(testing::small_profile());
  text.replace(text.find("\"mean_s\": 0.0205"), 16, "\"mean_s\": 1e999");
  EXPECT_NE(error_of([&] { parse_profile(text, "p.json"); }).find("p.json: not valid JSON: "), std::string::npos);
}

}  // namespace
}  // namespace plait::costmodels
