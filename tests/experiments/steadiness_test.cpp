// A run's steadiness from what it recorded (detail::judge_run), and the
// sweep's rules for the runs of a point (detail::wants_another_run, counted_runs).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "detail/measure_rounds.hpp"
#include "detail/host_monitor.hpp"
#include "detail/steadiness.hpp"

namespace plait::experiments::detail {
namespace {

// A 2-rank run as plait-exec --json --speed-probe reports it on a quiet machine.
nlohmann::json quiet_run() {
  return nlohmann::json::parse(R"({"time_per_step_s": 0.2, "step_times_s": [0.19, 0.21, 0.2, 0.22],
    "speed_probe_before_s": [0.010, 0.011], "speed_probe_after_s": [0.0105, 0.0102],
    "host_load": {"steps": {"wall_s": 0.82, "own_cpu_s": 1.62, "foreign_cpu_s": 0.02, "steal_s": 0, "cores": 2},
                  "serial": {"wall_s": 1.5, "own_cpu_s": 1.5, "foreign_cpu_s": 0.01, "steal_s": 0.01, "cores": 2}}})");
}

TEST(JudgeRun, AQuietRunIsSteady) {
  const Steadiness verdict = judge_run(quiet_run());
  EXPECT_TRUE(verdict.steady);
  EXPECT_TRUE(verdict.reasons.empty());
  // A report without any of the records (an older plait-exec) has nothing to judge.
  EXPECT_TRUE(judge_run(nlohmann::json{{"time_per_step_s", 0.2}}).steady);
}

TEST(JudgeRun, EachSignSaysWhatItSaw) {
  nlohmann::json slow_steps = quiet_run();
  slow_steps["step_times_s"] = {0.19, 0.21, 0.5, 0.2};
  EXPECT_EQ(judge_run(slow_steps).reasons,
            std::vector<std::string>{"step 3 took 2.63x the fastest (0.5 s against 0.19 s)"});

  nlohmann::json loaded = quiet_run();
  loaded["host_load"]["serial"]["foreign_cpu_s"] = 0.75;
  loaded["host_load"]["steps"]["steal_s"] = 0.2;
  EXPECT_EQ(judge_run(loaded).reasons,
            (std::vector<std::string>{"the hypervisor stole 0.24 cores during the steps (0.20 s of 0.82 s)",
                                      "other processes took 0.50 cores during the serial baseline (0.75 s of CPU "
                                      "time in 1.50 s, /proc/stat)"}));

  nlohmann::json drifting = quiet_run();
  drifting["speed_probe_after_s"][1] = 0.016;
  const Steadiness verdict = judge_run(drifting);
  EXPECT_FALSE(verdict.steady);
  EXPECT_EQ(verdict.reasons,
            std::vector<std::string>{"rank 1's speed probe changed by +45 % from before to after the steps"});
}

TEST(JudgeRun, ShortWindowsAndRanksWithoutAProbeAreNotJudged) {
  nlohmann::json run = quiet_run();
  // 30 ms of foreign time in 0.1 s is 0.3 cores, but three ticks of /proc/stat.
  run["host_load"]["steps"] = {{"wall_s", 0.1}, {"foreign_cpu_s", 0.03}};
  run["speed_probe_before_s"] = {0.01, -1};  // rank 1 has no forward step
  run["speed_probe_after_s"] = {0.01, -1};
  EXPECT_TRUE(judge_run(run).steady);
}

RunRecord run(int index, double time_s, bool steady = true) { return {index, time_s, steady, {steady ? "" : "why"}}; }

TEST(MeasureRounds, DisturbedRunsAreReplacedUpToTheLimit) {
  MeasureSpec measure;
  measure.repeats = 3;  // run_limit() 6
  EXPECT_TRUE(wants_another_run({run(0, 1.0), run(1, 1.1)}, measure));
  EXPECT_FALSE(wants_another_run({run(0, 1.0), run(1, 1.1), run(2, 1.05)}, measure));
  EXPECT_TRUE(wants_another_run({run(0, 3.0, false), run(1, 1.1), run(2, 1.05)}, measure));
  // Steady runs 1.0..1.8 spread 0.8 / 1.1 past 0.5: one more.
  EXPECT_TRUE(wants_another_run({run(0, 1.0), run(1, 1.8), run(2, 1.1)}, measure));
  std::vector<RunRecord> never;
  for (int i = 0; i < 6; ++i) never.push_back(run(i, 2.0, false));
  EXPECT_FALSE(wants_another_run(never, measure));
}

TEST(MeasureRounds, StepsCountFromSteadyRunsWhenTheyAreAMajority) {
  MeasureSpec measure;
  measure.repeats = 5;  // a majority is 3
  const CountedRuns counted = counted_runs({run(0, 3.0, false), run(1, 1.0), run(2, 1.1), run(3, 1.2)}, measure);
  EXPECT_TRUE(counted.steady);
  EXPECT_EQ(counted.indices, (std::vector<int>{1, 2, 3}));
  std::vector<RunRecord> mostly_disturbed = {run(0, 3.0, false), run(1, 1.0), run(2, 2.5, false), run(3, 1.2)};
  mostly_disturbed.front().reasons = {"step 2 took 3x the fastest"};
  const CountedRuns unsteady = counted_runs(mostly_disturbed, measure);
  EXPECT_FALSE(unsteady.steady);
  EXPECT_EQ(unsteady.indices, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(unsteady.why_unsteady, "2 of 4 runs disturbed: step 2 took 3x the fastest");
}

}  // namespace
}  // namespace plait::experiments::detail

namespace plait::experiments::detail {
namespace {

TEST(BusiestWindow, FindsTheStretchWithTheMostOtherWork) {
  // One sample a second; the host busy 1 core for the tree throughout, and
  // one more core of other work from 4 s to 6 s.
  std::vector<HostSample> samples;
  double busy = 0, tree = 0;
  for (int t = 0; t <= 20; ++t) {
    samples.push_back({double(t), busy, tree});
    busy += (t >= 4 && t < 6) ? 2.0 : 1.0;
    tree += 1.0;
  }
  const BusiestWindow ten = busiest_window(samples, 10);
  EXPECT_DOUBLE_EQ(ten.foreign_cores, 0.2);  // 2 s of other work in any 10 s holding it
  EXPECT_DOUBLE_EQ(ten.start_s, 0);
  const BusiestWindow two = busiest_window(samples, 2);
  EXPECT_DOUBLE_EQ(two.foreign_cores, 1.0);
  EXPECT_DOUBLE_EQ(two.start_s, 4);
  // The whole span when it is shorter than the window; nothing under a second.
  EXPECT_DOUBLE_EQ(busiest_window({samples[3], samples[5]}, 10).foreign_cores, 0.5);
  EXPECT_DOUBLE_EQ(busiest_window({{0, 0, 0}, {0.5, 1, 0}}, 10).foreign_cores, 0);
  EXPECT_DOUBLE_EQ(busiest_window({samples[0]}, 10).foreign_cores, 0);
}

}  // namespace
}  // namespace plait::experiments::detail
