// Programs from the builders, simulated: consistency with the validator's dry
// run and with the single-device pricing used for the speedup.
#include <gtest/gtest.h>

#include <filesystem>

#include "plait/schedule/build.hpp"
#include "plait/schedule/validate.hpp"
#include "plait/simulator/simulator.hpp"
#include "plait/traces/trace.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;

schedule::BuildSpec mgrit_spec(int layers, int ranks) {
  schedule::BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = 3, .coarsening_factor = 4, .relax = schedule::Relax::FCF, .iterations = 2};
  spec.adjoint = {.levels = 3, .coarsening_factor = 4, .relax = schedule::Relax::FCF, .iterations = 1};
  return spec;
}

TEST(SimulatorMgrit, UnitStepsOnAFreeNetworkTakeTheDryRunCriticalPath) {
  // Block steps cost 1 ms, everything else and every message (almost) nothing:
  // the simulated time is the validator's critical path in steps, times 1 ms.
  const schedule::Program program = schedule::build_mgrit(mgrit_spec(64, 8));
  const double step_s = 1e-3;
  const Prediction prediction =
      simulate(program, cluster(2, 4, link(0, 1e18), link(0, 1e18)),
               block_pricers(step_s, step_s, step_s));
  const double steps = schedule::critical_path_steps(program);
  EXPECT_NEAR(prediction.predicted_time_s, steps * step_s, 1e-9);
  EXPECT_EQ(prediction.critical_path.dry_run_block_steps, steps);
  EXPECT_EQ(static_cast<double>(prediction.critical_path.block_steps), steps);
}

TEST(SimulatorMgrit, SerialProgramOnOneRankMatchesSingleDevicePricing) {
  schedule::BuildSpec spec = mgrit_spec(32, 1);
  const schedule::Program serial = schedule::build_serial(spec);
  const auto pricers = block_pricers(2e-3, 3e-3, 5e-3, 1e-5, {{"loss", 1e-3}});
  const Prediction prediction = simulate(serial, cluster(1, 1, link(1e-6, 1e9)), pricers);
  const double single = single_device_seconds(serial, *pricers(DeviceUse{}));
  EXPECT_NEAR(prediction.predicted_time_s, single, single * 1e-9);
  EXPECT_NEAR(prediction.serial_predicted_time_s, single, single * 1e-12);
  EXPECT_NEAR(prediction.speedup, 1.0, 1e-9);
  // forward 32 steps, loss, 31 adjoint steps and one with gradients at least
  EXPECT_GE(single, 32 * 2e-3 + 1e-3 + 32 * 3e-3);
}

TEST(SimulatorMgrit, RankSharesAddUpToThePredictedTime) {
  const schedule::Program program = schedule::build_mgrit(mgrit_spec(256, 16));
  const Prediction prediction = simulate(
      program, cluster(2, 8, link(2e-6, 300e9), link(5e-6, 25e9)),
      block_pricers(1e-3, 2e-3, 3e-3, 2e-5));
  ASSERT_EQ(prediction.rank_reports.size(), 16u);
  for (const RankReport& report : prediction.rank_reports) {
    EXPECT_NEAR(report.busy_s + report.communication_s + report.idle_s, prediction.predicted_time_s, 1e-9)
        << "rank " << report.rank;
    EXPECT_GT(report.busy_s, 0);
  }
  EXPECT_GT(prediction.speedup, 1.0);
  EXPECT_NEAR(prediction.critical_path.length_s, prediction.predicted_time_s, 1e-12);
  EXPECT_NEAR(prediction.critical_path.compute_s + prediction.critical_path.communication_s,
              prediction.predicted_time_s, 1e-9);
}

TEST(SimulatorMgrit, PredictedTraceLoadsAsAPlaitTrace) {
  const schedule::Program program = schedule::build_mgrit(mgrit_spec(32, 4));
  const auto path = std::filesystem::temp_directory_path() / "plait-predicted-trace-test.json";
  TraceWriter writer(path.string());
  SimulateOptions options;
  options.listeners.push_back(&writer);
  const Prediction prediction = simulate(program, cluster(1, 4, link(1e-6, 1e10)),
                                         block_pricers(1e-3, 2e-3, 1e-5, 1e-5), options);
  const traces::Trace trace = traces::load_trace(path.string());
  EXPECT_EQ(trace.source, "predicted");
  EXPECT_EQ(trace.ranks, 4);
  EXPECT_EQ(static_cast<std::int64_t>(trace.events.size()), prediction.ops);
  EXPECT_NEAR(trace.makespan(), prediction.predicted_time_s, 1e-12);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace plait::simulator
