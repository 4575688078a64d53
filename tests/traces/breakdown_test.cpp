// The breakdown against a hand count, and on a recorded trace.
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "plait/traces/breakdown.hpp"
#include "plait/traces/import.hpp"

namespace plait::traces {
namespace {

Event event(int rank, const std::string& kind, const std::string& track, double start, double end,
            std::int64_t collective = -1) {
  Event e;
  e.rank = rank;
  e.kind = kind;
  e.track = track;
  e.cost_key = kind == "collective" ? "ncclKernel_AllReduce" : kind + "_kernel";
  e.start = start;
  e.end = end;
  e.collective = collective;
  e.repetition = 7;
  return e;
}

//  rank 0  stream 7: compute [0,4] [6,8]   stream 9: all-reduce [3,7]   memcpy [9,10]
//  rank 1  stream 7: compute [0,5]         stream 9: all-reduce [5,7]
//  each rank's ProfilerStep#7 spans [0,10]
Trace small() {
  Trace trace;
  trace.ranks = 2;
  trace.events = {event(0, "compute", "gpu 0 stream 7", 0, 4),    event(0, "compute", "gpu 0 stream 7", 6, 8),
                  event(0, "collective", "gpu 0 stream 9", 3, 7, 0), event(0, "memory", "gpu 0 stream 9", 9, 10),
                  event(0, "host", "thread 1", 0, 0.5),           event(0, "step", "steps", 0, 10),
                  event(1, "compute", "gpu 0 stream 7", 0, 5),    event(1, "collective", "gpu 0 stream 9", 5, 7, 0),
                  event(1, "step", "steps", 0, 10)};
  return trace;
}

TEST(Breakdown, HandCount) {
  const Breakdown result = breakdown(small());
  ASSERT_EQ(result.rows.size(), 4u);  // each rank: step 7, then all
  const RankBreakdown& step = result.rows[0];
  EXPECT_EQ(step.rank, 0);
  EXPECT_EQ(step.step, 7);
  EXPECT_DOUBLE_EQ(step.span_s, 10);
  EXPECT_DOUBLE_EQ(step.compute_s, 6);
  EXPECT_DOUBLE_EQ(step.communication_s, 4);
  EXPECT_DOUBLE_EQ(step.overlap_s, 2);        // [3,4] and [6,7]
  EXPECT_DOUBLE_EQ(step.memory_s, 1);
  EXPECT_DOUBLE_EQ(step.idle_s, 1);           // [8,9]: the host op is not GPU time
  EXPECT_DOUBLE_EQ(step.non_compute_s, 3);    // [4,6] and [9,10]
  EXPECT_DOUBLE_EQ(step.collective_wait_s, 2);  // arrived at 3, rank 1 at 5
  const RankBreakdown& all = result.rows[1];  // HTA's span: first start to last end
  EXPECT_EQ(all.step, -1);
  EXPECT_DOUBLE_EQ(all.span_s, 10);
  const RankBreakdown& late = result.rows[2];
  EXPECT_EQ(late.rank, 1);
  EXPECT_DOUBLE_EQ(late.idle_s, 3);
  EXPECT_DOUBLE_EQ(late.collective_wait_s, 0);
  ASSERT_EQ(result.stragglers.size(), 1u);
  EXPECT_EQ(result.stragglers[0].rank, 1);
  EXPECT_EQ(result.stragglers[0].last_arrivals, 1);
  EXPECT_DOUBLE_EQ(result.stragglers[0].caused_wait_s, 2);
  ASSERT_EQ(result.top.size(), 3u);
  EXPECT_EQ(result.top[0].name, "compute_kernel");
  EXPECT_DOUBLE_EQ(result.top[0].total_s, 4 + 2 + 5);
  EXPECT_EQ(result.top[0].count, 3);
}

TEST(Breakdown, GlooJobNamesItsStraggler) {
  const std::string dir = std::string(PLAIT_TRACE_DATA) + "/gloo/";
  const Breakdown result = breakdown(import_kineto({dir + "rank-0.json", dir + "rank-1.json"}));
  ASSERT_FALSE(result.stragglers.empty());
  EXPECT_EQ(result.stragglers[0].rank, 1);  // twice the batch
  double wait[2] = {0, 0};
  for (const RankBreakdown& row : result.rows) {
    if (row.step < 0) wait[row.rank] = row.collective_wait_s;
    EXPECT_NEAR(row.compute_s + row.non_compute_s + row.idle_s, row.span_s, 1e-9);
  }
  EXPECT_GT(wait[0], 2 * wait[1]);
}

TEST(Breakdown, RefusesATraceOfPlaitsOwn) {
  Trace trace;
  trace.events = {Event{0, 0, 0, 0, "block.fwd", 0, 0, 0.0, 1.0, 0, -1}};
  EXPECT_EQ(testing::error_of([&] { breakdown(trace); }),
            "breakdown: not an imported trace (no event kinds): plait import makes one");
}

}  // namespace
}  // namespace plait::traces
