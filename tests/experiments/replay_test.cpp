// Replay of a recorded 2-rank measured trace (data/: recorded with
// `plait run -n 2 program.json --trace measured-2rank.json` on a 2-core
// machine; re-record with tests/experiments/data/record.sh): the simulator,
// driven by the trace's own op durations, reproduces its makespan within 2 %.
// One simulation per process: each test is its own ctest.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"
#include "plait/simulator/replay.hpp"
#include "plait/traces/trace.hpp"

namespace plait::simulator {
namespace {

const std::string data = PLAIT_TEST_DATA;

struct Recorded {
  schedule::Program program = schedule::load_program(data + "/program-2rank.json");
  traces::Trace trace = traces::load_trace(data + "/measured-2rank.json");
  PlatformSpec platform = load_platform(find_platform("local"));
};

TEST(Replay, ReproducesTheMeasuredMakespanWithinTwoPercent) {
  const Recorded recorded;
  const Replay result = replay(recorded.program, recorded.trace, recorded.platform);
  EXPECT_NEAR(result.measured_time_s, recorded.trace.makespan(), 1e-12);
  EXPECT_LT(std::abs(result.relative_error), 0.02)
      << "measured " << result.measured_time_s << " s, replayed " << result.replayed_time_s << " s";
  EXPECT_GT(result.ops_from_trace, 0);
  EXPECT_EQ(result.ops_without_duration, 0);
}

TEST(Replay, TwiceAsFastDeviceRoughlyHalvesTheStep) {
  const Recorded recorded;
  const Replay result = replay(recorded.program, recorded.trace, recorded.platform, {.compute_scale = 0.5});
  EXPECT_LT(result.replayed_time_s, 0.6 * result.measured_time_s);
  EXPECT_GT(result.replayed_time_s, 0.4 * result.measured_time_s);
}

TEST(Replay, SlowerLinksNeverShortenTheStep) {
  const Recorded recorded;
  const Replay result =
      replay(recorded.program, recorded.trace, recorded.platform, {.bandwidth_scale = 0.01, .latency_scale = 100});
  EXPECT_GT(result.replayed_time_s, result.measured_time_s * 0.98);
}

TEST(Replay, TraceOfAnotherRankCountIsRefused) {
  Recorded recorded;
  recorded.trace.ranks = 3;
  try {
    replay(recorded.program, recorded.trace, recorded.platform);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "trace: has 3 ranks, the program 2");
  }
}

TEST(Replay, LinkScalesNeedPositiveBandwidth) {
  const Recorded recorded;
  try {
    with_link_scales(recorded.platform, 0, 1);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "replay: bandwidth scale must be > 0 and latency scale >= 0");
  }
}

}  // namespace
}  // namespace plait::simulator
