// Pipeline schedules in the simulator against their closed forms: with free
// messages and uniform stages, every stage of GPipe and of 1F1B idles
// (P - 1) / (M + P - 1) of the step, whatever a forward and a backward cost,
// and of interleaved 1F1B over v chunks a stage (P - 1) / (v M + P - 1);
// zero-bubble H1 idles at most a third of 1F1B when F, B and W cost the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "plait/schedule/build.hpp"
#include "plait/simulator/simulator.hpp"
#include "pipeline_spec.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;

// The largest difference over stages between the simulated idle share
// (step time less busy time, over the step time) and the closed form.
double bubble_error(schedule::Program (*build)(const schedule::BuildSpec&), int stages, int micro_batches,
                    int virtual_stages = 1) {
  return in_child_process([&] {
    // Two blocks a chunk.
    schedule::BuildSpec spec = plait::testing::pipeline_spec(2 * stages * virtual_stages, stages, micro_batches);
    spec.virtual_stages = virtual_stages;
    spec.model.batch = 24;
    const schedule::Program program = build(spec);
    // A backward step costs twice a forward one; input and loss cost nothing.
    const Prediction prediction =
        simulate(program, cluster(1, stages, link(0, 1e30)), block_pricers(1e-3, 2e-3, 2e-3));
    const double expected = double(stages - 1) / (virtual_stages * micro_batches + stages - 1);
    double worst = 0;
    for (const RankReport& rank : prediction.rank_reports)
      worst = std::max(worst, std::abs((prediction.predicted_time_s - rank.busy_s) / prediction.predicted_time_s -
                                       expected));
    return worst;
  });
}

TEST(PipelineSimulation, GPipeBubbleIsTheClosedForm) {
  for (int stages : {1, 2, 4})
    for (int micro_batches : {1, 4, 8}) EXPECT_LT(bubble_error(&schedule::build_gpipe, stages, micro_batches), 1e-9)
        << "P" << stages << " M" << micro_batches;
}

TEST(PipelineSimulation, OneFOneBBubbleIsTheClosedForm) {
  for (int stages : {1, 2, 4})
    for (int micro_batches : {1, 4, 8}) EXPECT_LT(bubble_error(&schedule::build_1f1b, stages, micro_batches), 1e-9)
        << "P" << stages << " M" << micro_batches;
}

// The longest idle time of a stage, with forward, input-gradient and
// weight-gradient halves of 1 ms each (a whole backward 2 ms).
double most_idle_s(schedule::Program (*build)(const schedule::BuildSpec&), int stages, int micro_batches) {
  return in_child_process([&] {
    const schedule::Program program = build(plait::testing::pipeline_spec(2 * stages, stages, micro_batches));
    const Prediction prediction = simulate(program, cluster(1, stages, link(0, 1e30)),
                                           block_pricers(1e-3, 1e-3, 2e-3, 0, {{"block.adj_weight", 1e-3}}));
    double idle = 0;
    for (const RankReport& rank : prediction.rank_reports)
      idle = std::max(idle, prediction.predicted_time_s - rank.busy_s);
    return idle;
  });
}

TEST(PipelineSimulation, ZeroBubbleIdlesAThirdOfOneFOneBAtMost) {
  for (int stages : {2, 4})
    for (int micro_batches : {4, 8}) {
      const double one_f_one_b = most_idle_s(&schedule::build_1f1b, stages, micro_batches);
      const double zero_bubble = most_idle_s(&schedule::build_zb_h1, stages, micro_batches);
      EXPECT_NEAR(one_f_one_b, (stages - 1) * 2 * 3e-3, 1e-9);  // (P - 1) (F + B + W) a stage of 2 blocks
      EXPECT_LE(zero_bubble, one_f_one_b / 3 + 1e-9) << "P" << stages << " M" << micro_batches;
    }
}

TEST(PipelineSimulation, InterleavedOneFOneBBubbleIsTheClosedForm) {
  for (int stages : {1, 2, 4})
    for (int virtual_stages : {2, 3})
      for (int micro_batches : {stages, 2 * stages})
        EXPECT_LT(bubble_error(&schedule::build_1f1b_interleaved, stages, micro_batches, virtual_stages), 1e-9)
            << "P" << stages << " v" << virtual_stages << " M" << micro_batches;
}

// Data-parallel 1F1B (2 stages x 2 replicas) whose gradient all-reduces are
// slow: overlapped with the backward (one bucket a block) the step is shorter
// than with the sums at its end, and no shorter than with free messages.
double data_parallel_step_s(bool overlap, double bandwidth_bytes_per_s) {
  return in_child_process([&] {
    schedule::BuildSpec spec = plait::testing::pipeline_spec(8, 2, 2);
    spec.replicas = 2;
    spec.dp_overlap = overlap;
    spec.bucket_bytes = 1;  // a block a bucket
    const schedule::Program program = schedule::build_1f1b(spec);
    return simulate(program, cluster(1, 4, link(0, bandwidth_bytes_per_s)), block_pricers(1e-3, 2e-3, 2e-3))
        .predicted_time_s;
  });
}

TEST(PipelineSimulation, OverlappedGradientAllReducesHideBehindTheBackward) {
  const double blocking = data_parallel_step_s(false, 1e7), overlapped = data_parallel_step_s(true, 1e7);
  const double free_messages = data_parallel_step_s(false, 1e30);
  EXPECT_LT(overlapped, blocking - 1e-3);  // at least one block's sum (about 3.4 ms) hidden
  EXPECT_GE(overlapped, free_messages - 1e-12);
  EXPECT_NEAR(data_parallel_step_s(true, 1e30), free_messages, 1e-9);
}

// A figure of a data-parallel 1F1B step's prediction (as data_parallel_step_s).
double data_parallel_figure(bool overlap, double bandwidth_bytes_per_s,
                            const std::function<double(const Prediction&)>& figure) {
  return in_child_process([&] {
    schedule::BuildSpec spec = plait::testing::pipeline_spec(8, 2, 2);
    spec.replicas = 2;
    spec.dp_overlap = overlap;
    spec.bucket_bytes = 1;
    const schedule::Program program = schedule::build_1f1b(spec);
    return figure(simulate(program, cluster(1, 4, link(0, bandwidth_bytes_per_s)), block_pricers(1e-3, 2e-3, 2e-3)));
  });
}

// Busy, communication and idle still make the step; the gradient stream's
// all-reduces are reported beside them, and a rank waiting for its stream at
// the end communicates (it is not idle).
TEST(PipelineSimulation, OverlappedAllReducesAreReportedBesideTheSharesOfTheStep) {
  const auto worst_sum_error = [](const Prediction& p) {
    double worst = 0;
    for (const RankReport& r : p.rank_reports)
      worst = std::max(worst, std::abs(r.busy_s + r.communication_s + r.idle_s - p.predicted_time_s));
    return worst;
  };
  const auto least_overlapped_share = [](const Prediction& p) {
    double least = 1;
    for (const RankReport& r : p.rank_reports) least = std::min(least, r.overlapped_communication_s / p.predicted_time_s);
    return least;
  };
  const auto most_overlapped_share = [](const Prediction& p) {
    double most = 0;
    for (const RankReport& r : p.rank_reports) most = std::max(most, r.overlapped_communication_s / p.predicted_time_s);
    return most;
  };
  const auto most_idle_minus_communication = [](const Prediction& p) {
    double most = -1e30;
    for (const RankReport& r : p.rank_reports) most = std::max(most, r.idle_s - r.communication_s);
    return most;
  };
  for (const bool overlap : {false, true})
    for (const double bandwidth : {1e5, 1e7}) EXPECT_LT(data_parallel_figure(overlap, bandwidth, worst_sum_error), 1e-9);
  EXPECT_GT(data_parallel_figure(true, 1e7, least_overlapped_share), 0);
  EXPECT_LE(data_parallel_figure(true, 1e7, most_overlapped_share), 1);
  EXPECT_EQ(data_parallel_figure(false, 1e7, most_overlapped_share), 0);
  // At 100 kB/s the sums take far longer than the compute: every rank mostly
  // waits for its stream, and that is communication.
  EXPECT_LT(data_parallel_figure(true, 1e5, most_idle_minus_communication), 0);
}

}  // namespace
}  // namespace plait::simulator
