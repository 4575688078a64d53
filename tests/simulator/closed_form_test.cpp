// Simulated times against closed forms. Each test simulates once (its own process).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"
#include "plait/simulator/simulator.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;
using schedule::OpKind;

constexpr double tolerance = 1e-9;  // relative; SimGrid's clock is exact to ~1e-12 here

TEST(SimulatorClosedForm, SerialChainOfNStepsTakesNTimesStepCost) {
  constexpr int steps = 50;
  constexpr double step_s = 3e-3;
  std::vector<schedule::Op> ops;
  for (int i = 0; i < steps; ++i) ops.push_back(step_op(i));
  const auto program = program_of({ops}, steps);
  const Prediction prediction =
      simulate(program, cluster(1, 1, link(1e-6, 1e9)), constant_pricers({{"block.fwd", step_s}}));
  EXPECT_NEAR(prediction.predicted_time_s, steps * step_s, steps * step_s * tolerance);
  EXPECT_EQ(prediction.ops, steps);
  ASSERT_EQ(prediction.rank_reports.size(), 1u);
  EXPECT_NEAR(prediction.rank_reports[0].busy_s, steps * step_s, 1e-12);
  EXPECT_NEAR(prediction.rank_reports[0].idle_s, 0, 1e-12);
  EXPECT_EQ(prediction.critical_path.block_steps, steps);
  EXPECT_NEAR(prediction.critical_path.compute_s, steps * step_s, 1e-12);
}

TEST(SimulatorClosedForm, ComputeScaleMultipliesOpsButNotMessages) {
  // rank 0: 10 steps, then a message to rank 1; scaled 2.5x, the steps take 2.5x.
  constexpr int steps = 10;
  constexpr double step_s = 1e-3, latency = 2e-6, bandwidth = 4e9, scale = 2.5;
  constexpr std::int64_t bytes = 4'000'000;
  std::vector<schedule::Op> ops;
  for (int i = 0; i < steps; ++i) ops.push_back(step_op(i));
  ops.push_back(message_op(OpKind::send, 1, bytes, 0));
  const auto program = program_of({ops, {message_op(OpKind::recv, 0, bytes, 0)}}, steps);
  const Prediction prediction = simulate(program, cluster(1, 2, link(latency, bandwidth)),
                                         scaled_pricers(constant_pricers({{"block.fwd", step_s}}), scale));
  const double expected = scale * steps * step_s + latency + bytes / bandwidth;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_THROW(scaled_pricers(constant_pricers({}), 0), Error);
  EXPECT_THROW(scaled_pricers(constant_pricers({}), std::nan("")), Error);
}

TEST(SimulatorClosedForm, RankComputeScalesSlowEachRankByItsOwnFactor) {
  // rank 0: 10 steps, then a message to rank 1, which then runs 5 steps; rank 1's core is 3x slower.
  constexpr double step_s = 1e-3, latency = 2e-6, bandwidth = 4e9;
  constexpr std::int64_t bytes = 1'000'000;
  std::vector<schedule::Op> first, second = {message_op(OpKind::recv, 0, bytes, 0)};
  for (int i = 0; i < 10; ++i) first.push_back(step_op(i));
  first.push_back(message_op(OpKind::send, 1, bytes, 0));
  for (int i = 10; i < 15; ++i) second.push_back(step_op(i));
  const auto program = program_of({first, second}, 15);
  SimulateOptions options;
  for (const std::vector<double>& wrong : std::vector<std::vector<double>>{{1}, {1, 0}, {1, std::nan("")}}) {
    options.rank_compute_scales = wrong;  // refused before the simulation starts
    EXPECT_THROW(simulate(program, cluster(1, 2, link(latency, bandwidth)), constant_pricers({}), options), Error);
  }
  options.rank_compute_scales = {1, 3};
  const Prediction prediction = simulate(program, cluster(1, 2, link(latency, bandwidth)),
                                         constant_pricers({{"block.fwd", step_s}}), options);
  const double expected = 10 * step_s + latency + bytes / bandwidth + 3 * 5 * step_s;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_NEAR(prediction.rank_reports[1].busy_s, 3 * 5 * step_s, 1e-12);
}

// Block steps of `step_s`; one after `idle_s` without a block step costs
// 1 + idle_s / 1 ms times that.
class IdlePricer final : public costmodels::OpPricer {
 public:
  explicit IdlePricer(double step_s) : step_s_(step_s) {}
  double op_seconds(const schedule::Program&, const schedule::Op& op) const override {
    return op.kind == OpKind::step ? step_s_ : 0;
  }
  double idle_factor(const schedule::Program&, double idle_s) const override { return 1 + idle_s / 1e-3; }

 private:
  double step_s_;
};

TEST(SimulatorClosedForm, TheFirstStepAfterAWaitCostsTheIdleFactor) {
  // rank 0: 10 steps, then a message to rank 1; rank 1: 1 step, waits for
  // the message, then 5 steps: the first of them after an idle stretch.
  constexpr double step_s = 1e-3, latency = 2e-6, bandwidth = 4e9;
  constexpr std::int64_t bytes = 1'000'000;
  std::vector<schedule::Op> first, second = {step_op(10), message_op(OpKind::recv, 0, bytes, 0)};
  for (int i = 0; i < 10; ++i) first.push_back(step_op(i));
  first.push_back(message_op(OpKind::send, 1, bytes, 0));
  for (int i = 11; i < 16; ++i) second.push_back(step_op(i));
  const auto program = program_of({first, second}, 16);
  const auto pricer = std::make_shared<IdlePricer>(step_s);
  const Prediction prediction =
      simulate(program, cluster(1, 2, link(latency, bandwidth)), [pricer](const DeviceUse&) { return pricer; });
  const double arrival = 10 * step_s + latency + bytes / bandwidth;
  const double idle_s = arrival - step_s;
  const double expected = arrival + step_s * (1 + idle_s / 1e-3) + 4 * step_s;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_NEAR(prediction.rank_reports[0].busy_s, 10 * step_s, 1e-12);  // no wait: no slowdown
}

TEST(SimulatorClosedForm, MessageWithinANodeTakesLatencyPlusBytesOverBandwidth) {
  constexpr double latency = 2e-6, bandwidth = 4e9;
  constexpr std::int64_t bytes = 3'000'000;
  const auto program = program_of({{message_op(OpKind::send, 1, bytes, 0)},
                                   {message_op(OpKind::recv, 0, bytes, 0)}}, 1);
  const Prediction prediction =
      simulate(program, cluster(1, 2, link(latency, bandwidth)), constant_pricers({}));
  const double expected = latency + bytes / bandwidth;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_EQ(prediction.messages, 1);
  // rank 1 posted its receive at 0 and the message was sent at 0: all of it is communication.
  EXPECT_NEAR(prediction.rank_reports[1].communication_s, expected, expected * tolerance);
  EXPECT_EQ(prediction.critical_path.messages, 1);
}

TEST(SimulatorClosedForm, MessageBetweenNodesAddsTheInterNodeLink) {
  constexpr double intra_latency = 1e-6, intra_bandwidth = 100e9;
  constexpr double inter_latency = 5e-6, inter_bandwidth = 25e9;
  constexpr std::int64_t bytes = 8'000'000;
  const auto program = program_of({{message_op(OpKind::send, 1, bytes, 0)},
                                   {message_op(OpKind::recv, 0, bytes, 0)}}, 1);
  const Prediction prediction = simulate(
      program, cluster(2, 1, link(intra_latency, intra_bandwidth), link(inter_latency, inter_bandwidth)),
      constant_pricers({}));
  const double expected = intra_latency + inter_latency + bytes / inter_bandwidth;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
}

TEST(SimulatorClosedForm, PipelinedSweepOverPRanksMatchesItsFormula) {
  constexpr int ranks = 6, per_rank = 4;
  constexpr double step_s = 1e-3, latency = 3e-6, bandwidth = 10e9;
  constexpr std::int64_t bytes = 6'291'456;  // a GPT-2-small-like state: 8 x 1024 x 768 fp32
  const Prediction prediction =
      simulate(pipelined_sweep(ranks, per_rank, bytes), cluster(1, ranks, link(latency, bandwidth)),
               constant_pricers({{"block.fwd", step_s}}));
  const double expected = ranks * per_rank * step_s + (ranks - 1) * (latency + bytes / bandwidth);
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  // The whole sweep is the critical path: every rank's steps and every message.
  EXPECT_EQ(prediction.critical_path.messages, ranks - 1);
  EXPECT_EQ(prediction.critical_path.block_steps, ranks * per_rank);
  EXPECT_NEAR(prediction.critical_path.compute_s + prediction.critical_path.communication_s, expected,
              expected * tolerance);
  ASSERT_EQ(prediction.critical_path.segments.size(), static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(prediction.critical_path.segments[r].rank, r);
  // The last rank idles until rank r-1's send, then waits one message.
  const RankReport& last = prediction.rank_reports[ranks - 1];
  EXPECT_NEAR(last.busy_s, per_rank * step_s, 1e-12);
  EXPECT_NEAR(last.communication_s, latency + bytes / bandwidth, 1e-12);
  EXPECT_NEAR(last.idle_s, expected - per_rank * step_s - (latency + bytes / bandwidth), 1e-9);
}

// An allreduce of `bytes` over P ranks on one node (one link per device).
Prediction allreduce_on_one_node(int ranks, AllreduceAlgorithm algorithm, std::int64_t bytes, double latency,
                                 double bandwidth) {
  std::vector<std::vector<schedule::Op>> ops(static_cast<std::size_t>(ranks), {allreduce_op(bytes)});
  SimulateOptions options;
  options.allreduce = algorithm;
  return simulate(program_of(ops, 1), cluster(1, ranks, link(latency, bandwidth)), constant_pricers({}),
                  options);
}

TEST(SimulatorClosedForm, RingAllreduceTakesTwoPMinusOneStepsOfAChunk) {
  constexpr int ranks = 5;
  constexpr double latency = 1e-6, bandwidth = 1e9;
  constexpr std::int64_t bytes = 5'000'000;
  const Prediction prediction = allreduce_on_one_node(ranks, AllreduceAlgorithm::ring, bytes, latency, bandwidth);
  const double expected = 2 * (ranks - 1) * (latency + (bytes / ranks) / bandwidth);
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_EQ(prediction.messages, 2 * (ranks - 1) * ranks);
}

TEST(SimulatorClosedForm, RecursiveDoublingTakesLogPExchanges) {
  constexpr int ranks = 8;
  constexpr double latency = 1e-6, bandwidth = 1e9;
  constexpr std::int64_t bytes = 1'000'000;
  const Prediction prediction =
      allreduce_on_one_node(ranks, AllreduceAlgorithm::recursive_doubling, bytes, latency, bandwidth);
  const double expected = 3 * (latency + bytes / bandwidth);
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * tolerance);
  EXPECT_EQ(prediction.messages, 3 * ranks);
}

TEST(SimulatorClosedForm, RecursiveDoublingFoldsRanksBeyondAPowerOfTwo) {
  // 6 ranks: 0 and 2 fold into 1 and 3; 1, 3, 4, 5 exchange twice; 1 and 3
  // send the result back: 12 messages. Ranks 4 and 5 do not fold, so their
  // first exchange overlaps the fold and their second message to 1 and 3 is
  // waiting when needed: the last result arrives after 3 message times, not
  // the 4 of a lockstep count. A latency-bound 8-byte scalar keeps links free.
  constexpr int ranks = 6;
  constexpr double latency = 1e-3, bandwidth = 1e9;
  constexpr std::int64_t bytes = 8;
  const Prediction prediction =
      allreduce_on_one_node(ranks, AllreduceAlgorithm::recursive_doubling, bytes, latency, bandwidth);
  const double expected = 3 * (latency + bytes / bandwidth);
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * 1e-5);
  EXPECT_EQ(prediction.messages, 2 + 2 * 4 + 2);
}

TEST(SimulatorClosedForm, SimulatedTimesAreIdenticalRunToRun) {
  const auto run = [] {
    const schedule::Program program = pipelined_sweep(16, 3, 1'000'000);
    SimulateOptions options;
    options.cross_traffic = true;  // the most sharing SimGrid computes
    return simulate(program, cluster(4, 4, link(1e-6, 50e9), link(4e-6, 12e9)),
                    constant_pricers({{"block.fwd", 1.7e-3}}), options)
        .predicted_time_s;
  };
  const double first = in_child_process(run);
  const double second = in_child_process(run);
  ASSERT_FALSE(std::isnan(first));
  EXPECT_EQ(std::memcmp(&first, &second, sizeof first), 0) << first << " vs " << second;
}

TEST(SimulatorClosedForm, ConcurrentMessagesShareALink) {
  // Rank 0 sends two messages at once; both leave through its one link, so
  // each gets half the bandwidth: both arrive after latency + 2 * bytes / bandwidth.
  constexpr double latency = 1e-6, bandwidth = 1e9;
  constexpr std::int64_t bytes = 1'000'000;
  const auto program = program_of({{message_op(OpKind::send, 1, bytes, 0), message_op(OpKind::send, 2, bytes, 0)},
                                   {message_op(OpKind::recv, 0, bytes, 0)},
                                   {message_op(OpKind::recv, 0, bytes, 0)}}, 1);
  const Prediction prediction = simulate(program, cluster(1, 3, link(latency, bandwidth)), constant_pricers({}));
  const double expected = latency + 2 * bytes / bandwidth;
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * 1e-6);
}

}  // namespace
}  // namespace plait::simulator

namespace plait::simulator {
namespace {

using namespace testing;
using schedule::OpKind;

// Two messages within a node, one per segment of a measured piecewise model.
TEST(SimulatorClosedForm, IntraNodeMessagesFollowAMeasuredPiecewiseModel) {
  costmodels::MessageModel model;
  model.segments = {{4096, 0.4e-6, 1.0 / 2e9}, {1 << 30, 3.8e-6, 1.0 / 6e9}};
  constexpr std::int64_t small = 512, large = 4'000'000;
  // rank 0 sends the small one, waits for rank 1's reply, which is large.
  const auto program = program_of({{message_op(OpKind::send, 1, small, 0), message_op(OpKind::recv, 1, large, 0)},
                                   {message_op(OpKind::recv, 0, small, 0), message_op(OpKind::send, 0, large, 0)}},
                                  1);
  SimulateOptions options;
  options.intra_node_messages = model;
  options.eager_limit_bytes = -1;
  const Prediction prediction =
      simulate(program, cluster(1, 2, link(1e-6, 10e9)), constant_pricers({}), options);
  const double expected = (0.4e-6 + small / 2e9) + (3.8e-6 + large / 6e9);
  EXPECT_NEAR(prediction.predicted_time_s, expected, expected * 1e-9);
}

}  // namespace
}  // namespace plait::simulator

namespace plait::simulator {
namespace {

using namespace testing;

TEST(SimulatorClosedForm, RanksSharingANodeArePricedContendedAndTheSerialRunAlone) {
  // Pricers: a block step takes 1 ms alone, 1.5 ms with other ranks on the node.
  std::vector<int> uses;
  const PricerFactory pricers = [&uses](const DeviceUse& use) -> std::shared_ptr<const costmodels::OpPricer> {
    uses.push_back(use.ranks_on_node);
    const double step_s = use.ranks_on_node > 1 ? 1.5e-3 : 1e-3;
    return std::make_shared<ConstantPricer>(std::map<std::string, double>{{"block.fwd", step_s},
                                                                          {"block.fwd_keep", step_s}});
  };
  std::vector<schedule::Op> steps;
  for (int i = 0; i < 10; ++i) steps.push_back(step_op(i));
  const schedule::Program program = program_of({steps, steps}, 20);
  const Prediction prediction = simulate(program, cluster(1, 2, link(1e-6, 1e9)), pricers);
  EXPECT_NEAR(prediction.predicted_time_s, 10 * 1.5e-3, 1e-12);
  // build_serial of 20 layers: 20 forward block steps priced alone (other keys cost 0 here).
  EXPECT_NEAR(prediction.serial_predicted_time_s, 20 * 1e-3, 1e-12);
  std::sort(uses.begin(), uses.end());
  EXPECT_EQ(uses, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace plait::simulator
