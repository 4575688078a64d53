// What the sweep reads back of its own steadiness records: mutated and
// truncated copies of a run's report each get a verdict (judge_run never
// throws on a JSON value), and of calibration-steadiness.json each load or
// give one located plait::Error (see tests/support/loader_fuzz.hpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "detail/steadiness.hpp"
#include "loader_fuzz.hpp"

namespace plait::experiments::detail {
namespace {

TEST(SteadinessFuzz, MutatedRunReportsGetAVerdict) {
  const std::string report = R"({"time_per_step_s": 0.2, "step_times_s": [0.19, 0.21, 0.2],
    "speed_probe_before_s": [0.010, 0.011], "speed_probe_after_s": [0.0105, 0.0102],
    "host_load": {"steps": {"wall_s": 0.82, "own_cpu_s": 1.62, "foreign_cpu_s": 0.02, "steal_s": 0, "cores": 2},
                  "serial": {"wall_s": 1.5, "own_cpu_s": 1.5, "foreign_cpu_s": 0.01, "steal_s": 0.01, "cores": 2}}})";
  const auto summary = plait::testing::fuzz_loader(report, "measured-0.json", 3000, [](const std::string& text) {
    const auto value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) throw Error("measured-0.json", "is not JSON");
    judge_run(value);
  });
  EXPECT_GT(summary.loaded, 1000);
}

TEST(SteadinessFuzz, MutatedCalibrationAttemptsLoadOrGiveOneLocatedError) {
  const std::string valid = dump_calibration_attempts({{0.61, 170, false}, {0.02, 0, true}});
  const auto parsed = parse_calibration_attempts(valid, "calibration-steadiness.json");
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_FALSE(parsed[0].steady);
  EXPECT_DOUBLE_EQ(parsed[0].busiest_foreign_cores, 0.61);
  const auto summary = plait::testing::fuzz_loader(valid, "calibration-steadiness.json", 3000, [](const std::string& text) {
    parse_calibration_attempts(text, "calibration-steadiness.json");
  });
  EXPECT_GT(summary.refused, 500);
}

}  // namespace
}  // namespace plait::experiments::detail
