// Collectives and messages across nodes in closed form (cluster_links.hpp):
// a group's span over nodes, NCCL's hierarchical all-reduce against its
// formula, and the step estimator pricing a tensor-parallel group that
// spans nodes, a gradient sum across nodes and a stage boundary between nodes.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "plait/costmodels/cluster_links.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

const RingAllreduceModel node_ring{.step_latency_s = 2e-6, .link_bytes_per_s = 3e11, .pass_bytes_per_s = 4e11};
const InterNodeLinks nics{.node_bytes_per_s = 1e11, .latency_s = 5e-6, .collective_overhead_s = 30e-6};

TEST(ClusterLinks, AGroupsSpanCountsItsNodesItsShareOfEachAndWhoSharesTheNICs) {
  std::vector<int> tensor16(16);
  for (int i = 0; i < 16; ++i) tensor16[i] = 8 + i;  // devices 8..23: nodes 1 and 2
  const GroupSpan tp = span_of(tensor16, 8, 8);
  EXPECT_EQ(tp.nodes, 2);
  EXPECT_EQ(tp.per_node, 8);
  EXPECT_EQ(tp.sharing, 1);
  const std::vector<int> replicas = {3, 11, 19, 27, 35, 43, 51, 59};  // one device a node
  const GroupSpan dp = span_of(replicas, 8, 8);
  EXPECT_EQ(dp.nodes, 8);
  EXPECT_EQ(dp.per_node, 1);
  EXPECT_EQ(dp.sharing, 8);  // the node's other 7 devices sum their own replicas' gradients at once
  const std::vector<int> pairs = {0, 1, 8, 9, 16, 17, 24, 25};
  EXPECT_EQ(span_of(pairs, 8, 8).sharing, 4);
  EXPECT_EQ(span_of(pairs, 8, 4).sharing, 2);  // a Program of 4 ranks keeps 4 devices of a node busy
  const std::vector<int> inside = {4, 5, 6, 7};
  EXPECT_EQ(span_of(inside, 8, 8).nodes, 1);
  EXPECT_EQ(span_of(inside, 8, 8).per_node, 4);
}

TEST(ClusterLinks, OnOneNodeTheAllReduceIsTheNodesRing) {
  for (int devices : {2, 4, 8})
    EXPECT_DOUBLE_EQ(hierarchical_allreduce_seconds(node_ring, nics, {.nodes = 1, .per_node = devices}, 64e6),
                     node_ring.seconds(devices, 64e6));
}

TEST(ClusterLinks, AcrossNodesItIsTheRingInsideThenTheRingOverTheNodesNICs) {
  const double bytes = 48e6;
  const GroupSpan span{.nodes = 4, .per_node = 2, .sharing = 3};
  const double expected = nics.collective_overhead_s + node_ring.seconds(2, bytes) +
                          2 * 3 * (nics.latency_s + 3 * bytes / (4 * nics.node_bytes_per_s));
  EXPECT_DOUBLE_EQ(hierarchical_allreduce_seconds(node_ring, nics, span, bytes), expected);
  // One device a node: nothing inside but the pass over the buffer.
  const double alone = hierarchical_allreduce_seconds(node_ring, nics, {.nodes = 2, .per_node = 1}, bytes);
  EXPECT_DOUBLE_EQ(alone, nics.collective_overhead_s + bytes / node_ring.pass_bytes_per_s +
                              2 * (nics.latency_s + bytes / (2 * nics.node_bytes_per_s)));
  EXPECT_DOUBLE_EQ(inter_node_message_seconds(nics, 4, 1e6), nics.latency_s + 4e6 / nics.node_bytes_per_s);
  // An all-gather or reduce-scatter: each ring once.
  EXPECT_DOUBLE_EQ(hierarchical_gather_seconds(node_ring, nics, span, bytes),
                   nics.collective_overhead_s + (2 - 1) * (node_ring.step_latency_s + bytes / 2 / node_ring.link_bytes_per_s) +
                       3 * (nics.latency_s + 3 * bytes / (4 * nics.node_bytes_per_s)));
  EXPECT_DOUBLE_EQ(hierarchical_gather_seconds(node_ring, nics, {.nodes = 1, .per_node = 8}, bytes),
                   7 * (node_ring.step_latency_s + bytes / 8 / node_ring.link_bytes_per_s));
  EXPECT_THROW(hierarchical_allreduce_seconds(node_ring, InterNodeLinks{}, span, bytes), Error);
}

// A small Megatron step of `gpus` A100s (hidden 512, 4 layers, sequence 256).
StepEstimator small_step(int gpus, int tp, int pp, int dp) {
  StepMeasurement step{.line = 2, .gpus = gpus, .global_batch = 8 * dp, .micro_batch = 2, .hidden = 512, .heads = 8,
                       .layers = 4, .seq = 256, .tp = tp, .dp = dp, .pp = pp, .seconds = 1};
  return StepEstimator(schedule::build_kind(megatron_step_kind, megatron_step_spec(step, 1024)));
}

StepLinks node_links() {
  StepLinks links;
  links.ring = node_ring;
  links.messages.segments = {{.max_bytes = std::numeric_limits<std::int64_t>::max(), .latency_s = 2e-6,
                              .seconds_per_byte = 1 / 3e11}};
  return links;
}

TEST(ClusterLinks, TheStepEstimatorPricesWhatCrossesNodesOnTheNICsAndNothingElse) {
  const auto pricer = make_analytic_pricer(device_sheet("a100-80gb"));
  StepLinks one_node = node_links();
  StepLinks cluster = node_links();
  cluster.cluster = StepLinks::Cluster{.devices_per_node = 4, .inter = nics};
  // Within a node of 8 the cluster changes nothing; on nodes of 4 each of these crosses them.
  StepLinks wide = node_links();
  wide.cluster = StepLinks::Cluster{.devices_per_node = 8, .inter = nics};
  for (const auto& [tp, pp, dp] : {std::tuple{8, 1, 1}, {1, 2, 4}, {2, 4, 1}}) {
    const StepEstimator step = small_step(tp * pp * dp, tp, pp, dp);
    EXPECT_DOUBLE_EQ(step.seconds(*pricer, wide), step.seconds(*pricer, one_node)) << tp << pp << dp;
    EXPECT_GT(step.seconds(*pricer, cluster), step.seconds(*pricer, one_node)) << tp << pp << dp;
  }
  // Slower NICs cost more, in proportion to what crosses them.
  StepLinks slow = cluster;
  slow.cluster->inter.node_bytes_per_s /= 2;
  const StepEstimator tensor = small_step(8, 8, 1, 1);
  EXPECT_GT(tensor.seconds(*pricer, slow), tensor.seconds(*pricer, cluster));
}

}  // namespace
}  // namespace plait::costmodels
