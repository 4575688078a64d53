// Replay of imported traces on their own dependencies: a hand-made case with
// every knob, and the 2-rank gloo job against the step times it measured itself.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
#include "plait/schedule/files.hpp"
#include "plait/traces/dependency_replay.hpp"
#include "plait/traces/import.hpp"

namespace plait::traces {
namespace {

Event event(int rank, const std::string& kind, double start, double end, std::int64_t collective = -1) {
  Event e;
  e.rank = rank;
  e.kind = kind;
  e.track = kind == "collective" ? "comm" : "main";
  e.cost_key = kind == "collective" ? "all_reduce" : "work";
  e.start = start;
  e.end = end;
  e.collective = collective;
  e.group = kind == "collective" ? "default" : "";
  return e;
}

// Rank 0 computes 1 s, rank 1 2 s; then one all-reduce that moves 1 s once both are there.
Trace two_ranks() {
  Trace trace;
  trace.ranks = 2;
  trace.events = {event(0, "compute", 0, 1), event(0, "collective", 1, 3, 0),
                  event(1, "compute", 0, 2), event(1, "collective", 2, 3, 0)};
  trace.events[1].deps = {0};
  trace.events[3].deps = {2};
  trace.events[1].bytes = trace.events[3].bytes = 1000;
  return trace;
}

TEST(DependencyReplay, MeasuredDurationsReproduceTheTrace) {
  const auto replay = replay_dependencies(two_ranks());
  EXPECT_DOUBLE_EQ(replay.measured_s, 3);
  EXPECT_DOUBLE_EQ(replay.replayed_s, 3);
  EXPECT_EQ(replay.replayed.events, two_ranks().events);
  EXPECT_EQ(replay.collectives, 1);
}

TEST(DependencyReplay, KnobsMoveWhatTheyShould) {
  // Twice as fast a device: rank 1 arrives at 1, the transfer still takes 1.
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), {.compute_scale = 0.5}).replayed_s, 2);
  // Only the late rank faster: it arrives with rank 0 at 1.
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), {.rank_compute_scale = {{1, 0.5}}}).replayed_s, 2);
  // Only the early rank faster: nothing changes.
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), {.rank_compute_scale = {{0, 0.5}}}).replayed_s, 3);
  // One size of message: all of the transfer is bandwidth.
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), {.bandwidth_scale = 4}).replayed_s, 2.25);
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), {.latency_scale = 0}).replayed_s, 3);
  // A platform's price for the collective replaces the measured transfer.
  DependencyReplayOptions priced;
  std::vector<int> seen_ranks;
  priced.price_collective = [&](const CollectiveInstance& instance) {
    seen_ranks = instance.ranks;
    EXPECT_DOUBLE_EQ(instance.measured_transfer_s, 1);
    EXPECT_EQ(instance.bytes, 1000);
    return 0.25;
  };
  EXPECT_DOUBLE_EQ(replay_dependencies(two_ranks(), priced).replayed_s, 2.25);
  EXPECT_EQ(seen_ranks, (std::vector<int>{0, 1}));
}

TEST(DependencyReplay, AWaitEndsWithWhatItWaitsFor) {
  Trace trace;
  trace.ranks = 1;
  trace.events = {event(0, "host", 0, 0.1), event(0, "compute", 0.2, 2.0), event(0, "wait", 0.3, 2.1)};
  trace.events[1].track = "gpu 0 stream 7";
  trace.events[1].deps = {0};
  trace.events[2].deps = {1};
  const auto replay = replay_dependencies(trace, {.compute_scale = 0.5});
  EXPECT_DOUBLE_EQ(replay.replayed.events[1].end, 1.1);  // 0.2 + 1.8 / 2
  EXPECT_DOUBLE_EQ(replay.replayed.events[2].end, 1.2);  // its 0.1 after the kernel kept
}

TEST(DependencyReplay, ACycleIsNamed) {
  Trace trace = two_ranks();
  trace.events[0].deps = {1};  // the compute after the collective that follows it
  EXPECT_EQ(testing::error_of([&] { replay_dependencies(trace); }),
            "/events/0: rank 0 main \"work\" never becomes ready: its dependencies or collectives form a cycle");
}

TEST(DependencyReplay, AsSoonAsPossibleTimesAnUnscheduledTrace) {
  Trace trace = two_ranks();
  for (Event& e : trace.events) {
    e.end -= e.start;
    e.start = 0;
  }
  const Trace scheduled = schedule_as_soon_as_possible(trace);
  EXPECT_DOUBLE_EQ(scheduled.events[1].start, 1);  // after rank 0's compute
  EXPECT_DOUBLE_EQ(scheduled.events[1].end, 2 + 2);  // from rank 1's arrival, each member its own duration
  EXPECT_DOUBLE_EQ(scheduled.events[3].start, 2);
  EXPECT_DOUBLE_EQ(scheduled.events[3].end, 2 + 1);
}

// The job timed each step itself (scripts/record-gloo-trace.py): the replay
// at measured durations must give it within 2 %.
TEST(DependencyReplay, RecordedGlooJobReplaysToItsMeasuredSteps) {
  const std::string dir = std::string(PLAIT_TRACE_DATA) + "/gloo/";
  const auto measured = nlohmann::json::parse(read_text_file(dir + "steps.json"));
  const Trace trace = import_kineto({dir + "rank-0.json", dir + "rank-1.json"});
  const auto replay = replay_dependencies(trace);
  ASSERT_EQ(replay.steps.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    const double job = measured["step_wall_s"][k].get<double>();
    EXPECT_NEAR(replay.steps[k].replayed_s / job, 1, 0.02) << "step " << replay.steps[k].step;
  }
  // Rank 1 has twice rank 0's batch: at half its compute it stops holding rank 0 up.
  const auto balanced = replay_dependencies(trace, {.rank_compute_scale = {{1, 0.5}}});
  const auto faster_early_rank = replay_dependencies(trace, {.rank_compute_scale = {{0, 0.5}}});
  EXPECT_LT(balanced.replayed_s, 0.95 * replay.replayed_s);
  EXPECT_GT(faster_early_rank.replayed_s, 0.98 * replay.replayed_s);
}

}  // namespace
}  // namespace plait::traces
