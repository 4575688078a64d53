// The inter-node fit recovers the links that made the steps: small Megatron
// steps on nodes of 4 devices (tensor-parallel groups, gradient sums and
// stage boundaries across nodes) simulated by SimGrid with known NIC
// bandwidth, latency and collective overhead, then fitted by the step
// estimator from the platform sheet's figures: what calibrate --from-steps
// does with measured rows. Also the simulator and the estimator agree, and
// replay --platform prices an imported trace's collectives across nodes alike.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "plait/costmodels/inter_node_fit.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/build.hpp"
#include "plait/simulator/collective_closed_form.hpp"
#include "plait/simulator/simulator.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;
namespace cm = costmodels;

constexpr int per_node = 4;
constexpr double intra_latency = 1e-6, intra_bandwidth = 3e11;
const cm::InterNodeLinks truth{.node_bytes_per_s = 12.5e9, .latency_s = 20e-6, .collective_overhead_s = 150e-6};

cm::StepMeasurement row(int tp, int pp, int dp) {
  return {.line = 2, .gpus = tp * pp * dp, .global_batch = 8 * dp, .micro_batch = 2, .hidden = 512, .heads = 8,
          .layers = 4, .seq = 256, .tp = tp, .dp = dp, .pp = pp, .seconds = 1};
}

PlatformSpec platform_of(int gpus) {
  PlatformSpec platform = cluster((gpus + per_node - 1) / per_node, per_node, link(intra_latency, intra_bandwidth),
                                  link(truth.latency_s, truth.node_bytes_per_s));
  platform.inter_node.hierarchical_collectives = true;
  platform.inter_node.collective_overhead_s = truth.collective_overhead_s;
  return platform;
}

TEST(ClusterFit, TheFitRecoversTheInterNodeLinksThatMadeTheSteps) {
  const std::shared_ptr<const cm::OpPricer> pricer = cm::make_analytic_pricer(cm::device_sheet("a100-80gb"));
  const PricerFactory pricers = [pricer](const DeviceUse&) { return pricer; };
  std::vector<cm::StepMeasurement> steps;
  std::vector<cm::StepEstimator> estimators;
  for (const auto& [tp, pp, dp] : {std::tuple{8, 1, 1}, {8, 1, 2}, {2, 1, 4}, {1, 1, 16}, {4, 2, 1}, {2, 4, 2},
                                   {4, 1, 4}, {1, 2, 4}, {8, 2, 1}}) {
    cm::StepMeasurement step = row(tp, pp, dp);
    const schedule::Program program = schedule::build_kind(cm::megatron_step_kind, cm::megatron_step_spec(step, 1024));
    step.seconds = in_child_process(
        [&] { return simulate(program, platform_of(step.gpus), pricers).predicted_time_s; });
    ASSERT_TRUE(std::isfinite(step.seconds)) << tp << " " << pp << " " << dp;
    steps.push_back(step);
    estimators.emplace_back(program);
  }
  cm::StepLinks links;
  links.ring = {.step_latency_s = intra_latency, .link_bytes_per_s = intra_bandwidth,
                .pass_bytes_per_s = std::numeric_limits<double>::infinity()};
  links.messages.segments = {{.max_bytes = std::numeric_limits<std::int64_t>::max(), .latency_s = intra_latency,
                              .seconds_per_byte = 1 / intra_bandwidth}};
  links.cluster = cm::StepLinks::Cluster{.devices_per_node = per_node, .inter = truth};
  // The estimator prices what SimGrid simulated (a message's latency within its node aside).
  for (std::size_t i = 0; i < steps.size(); ++i)
    EXPECT_NEAR(estimators[i].seconds(*pricer, links) / steps[i].seconds, 1, 5e-3) << "row " << i;

  links.cluster->inter = {.node_bytes_per_s = 1e11, .latency_s = 5e-6, .collective_overhead_s = 0};  // a sheet's
  std::vector<std::size_t> rows(steps.size());
  std::iota(rows.begin(), rows.end(), 0);
  const cm::InterNodeFit fit = cm::fit_inter_node(steps, estimators, rows, *pricer, links);
  EXPECT_NEAR(fit.links.node_bytes_per_s / truth.node_bytes_per_s, 1, 0.03);
  EXPECT_NEAR(fit.links.latency_s / truth.latency_s, 1, 0.25);
  EXPECT_NEAR(fit.links.collective_overhead_s / truth.collective_overhead_s, 1, 0.1);
  EXPECT_LT(fit.mean_abs_error, 5e-3);
  EXPECT_EQ(fit.rows, int(steps.size()));
}

}  // namespace
}  // namespace plait::simulator

namespace plait::simulator {
namespace {

// An imported trace's collectives re-priced on a star (replay --platform):
// across nodes NCCL's hierarchical forms, inside a node the ring, a message
// over the inter-node link.
TEST(ClusterClosedForm, ImportedCollectivesAcrossNodesTakeTheHierarchicalForms) {
  PlatformSpec platform = testing::cluster(2, 2, testing::link(2e-6, 2e11), testing::link(5e-6, 2.5e10));
  platform.inter_node.collective_overhead_s = 30e-6;
  const std::vector<int> device_of_rank = {0, 1, 2, 3};
  const cm::RingAllreduceModel node{.step_latency_s = 2e-6, .link_bytes_per_s = 2e11,
                                    .pass_bytes_per_s = std::numeric_limits<double>::infinity()};
  const cm::InterNodeLinks nics{.node_bytes_per_s = 2.5e10, .latency_s = 5e-6, .collective_overhead_s = 30e-6};
  const cm::GroupSpan both{.nodes = 2, .per_node = 2, .sharing = 1};
  const double bytes = 8e6;
  EXPECT_DOUBLE_EQ(collective_seconds(platform, device_of_rank, "ncclKernel_AllReduce_RING_LL", 8000000, {0, 1, 2, 3}),
                   cm::hierarchical_allreduce_seconds(node, nics, both, bytes));
  EXPECT_DOUBLE_EQ(collective_seconds(platform, device_of_rank, "nccl:all_gather", 8000000, {0, 1, 2, 3}),
                   cm::hierarchical_gather_seconds(node, nics, both, bytes));
  EXPECT_DOUBLE_EQ(collective_seconds(platform, device_of_rank, "nccl:all_reduce", 8000000, {2, 3}),
                   2 * (2e-6 + bytes / 2 / 2e11));
  EXPECT_DOUBLE_EQ(collective_seconds(platform, device_of_rank, "nccl:send", 8000000, {1, 2}), 5e-6 + bytes / 2.5e10);
}

}  // namespace
}  // namespace plait::simulator
