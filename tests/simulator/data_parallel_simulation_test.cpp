// Data parallelism in the simulator: replicas on disjoint devices run their
// step side by side, then each position's ranks sum their gradients in a ring,
// so the step is one replica's step plus the ring's 2 (D - 1) chunk messages.
#include <gtest/gtest.h>

#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/simulator/simulator.hpp"
#include "pipeline_spec.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;

constexpr double latency = 1e-6, bandwidth = 1e9;

double step_seconds(const schedule::Program& program) {
  return in_child_process([&] {
    SimulateOptions options;
    options.allreduce = AllreduceAlgorithm::ring;
    return simulate(program, cluster(1, program.ranks, link(latency, bandwidth)), block_pricers(1e-3, 2e-3, 2e-3),
                    options)
        .predicted_time_s;
  });
}

// `slack`: the share of the ring's time the step may differ by (0: exact).
void expect_replicas_add_one_ring(schedule::Program (*build)(const schedule::BuildSpec&), schedule::BuildSpec spec,
                                  int replicas, double slack) {
  schedule::BuildSpec one = spec;  // a replica's share of the batch: its messages are that size
  one.model.batch /= replicas;
  const double one_replica = step_seconds(build(one));
  spec.replicas = replicas;
  const schedule::Program program = build(spec);
  const int per_replica = spec.ranks;
  // The largest gradient of a position: the first, which holds the most blocks.
  const std::int64_t bytes = schedule::gradient_bytes(program.model, program.partition[1] - program.partition[0]);
  const double ring = 2 * (replicas - 1) * (latency + double(bytes) / replicas / bandwidth);
  const double expected = one_replica + ring;
  EXPECT_NEAR(step_seconds(program), expected, 1e-9 * expected + slack * ring)
      << program.kind << " " << per_replica << " ranks x " << replicas << " replicas";
}

TEST(DataParallelSimulation, OneFOneBReplicasAddOneGradientRing) {
  schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 2, 2);
  spec.model.batch = 12;
  // A pipeline's ring runs up to one state message's transfer (here 3 % of
  // the ring) off the closed form: SimGrid shares the links between the last
  // stage's final send and its ring's first messages.
  for (int replicas : {2, 3}) expect_replicas_add_one_ring(&schedule::build_1f1b, spec, replicas, 0.05);
}

// With "collectives": "hierarchical", a gradient sum across nodes is NCCL's
// hierarchical all-reduce in closed form once the last replica arrives, the
// node's replicas sharing its NICs: 4 replicas of one rank on 2 nodes of 2.
TEST(DataParallelSimulation, AcrossNodesHierarchicalSumsTakeTheirClosedForm) {
  schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 1, 1);
  constexpr int replicas = 4;
  schedule::BuildSpec one = spec;
  one.model.batch /= replicas;
  const double one_replica = step_seconds(schedule::build_1f1b(one));
  spec.replicas = replicas;
  const schedule::Program program = schedule::build_1f1b(spec);
  const double nic_latency = 10e-6, nic_bandwidth = 5e8, overhead = 40e-6;
  const double seconds = in_child_process([&] {
    PlatformSpec platform = cluster(2, 2, link(latency, bandwidth), link(nic_latency, nic_bandwidth));
    platform.inter_node.hierarchical_collectives = true;
    platform.inter_node.collective_overhead_s = overhead;
    return simulate(program, platform, block_pricers(1e-3, 2e-3, 2e-3)).predicted_time_s;
  });
  const double bytes = double(schedule::gradient_bytes(program.model, 4));
  const double inside = 2 * (2 - 1) * (latency + bytes / 2 / bandwidth);
  const double across = overhead + inside + 2 * (2 - 1) * (nic_latency + bytes / (2 * nic_bandwidth));
  EXPECT_NEAR(seconds, one_replica + across, 1e-9 * seconds);
}

TEST(DataParallelSimulation, MgritReplicasAddOneGradientRing) {
  schedule::BuildSpec spec = plait::testing::pipeline_spec(8, 2, 1);
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
  spec.adjoint = spec.forward;
  expect_replicas_add_one_ring(&schedule::build_mgrit, spec, 2, 0);
}

// TorchBraid's gradient sum: one blocking all-reduce per parameter tensor,
// each at its own size: recursive doubling (log2 D exchanges of the tensor)
// up to the eager limit, a ring above it.
TEST(DataParallelSimulation, PerTensorSumsAddOneAllReducePerTensor) {
  schedule::BuildSpec spec = plait::testing::pipeline_spec(8, 2, 1);
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = 2};
  spec.adjoint = spec.forward;
  constexpr int replicas = 2;
  constexpr std::int64_t eager_limit = 2048;  // the LayerNorms and biases below it, the matrices above
  const auto simulate_step = [&](const schedule::Program& program) {
    return in_child_process([&] {
      SimulateOptions options;
      options.eager_limit_bytes = eager_limit;
      return simulate(program, cluster(1, program.ranks, link(latency, bandwidth)), block_pricers(1e-3, 2e-3, 2e-3),
                      options)
          .predicted_time_s;
    });
  };
  schedule::BuildSpec one = spec;
  one.model.batch /= replicas;
  const double one_replica = simulate_step(schedule::build_mgrit(one));
  spec.replicas = replicas;
  spec.dp_per_tensor = true;
  const schedule::Program program = schedule::build_mgrit(spec);
  double sums = 0;  // both positions hold 4 blocks: the same tensors
  int below = 0, above = 0;
  for (const schedule::Section& section : program.rank_programs[0].sections)
    for (const schedule::Op& op : section.ops) {
      if (op.kind != schedule::OpKind::grad_allreduce) continue;
      for (const std::int64_t elements : schedule::gradient_tensor_elements(program, 0, op)) {
        const double bytes = 4.0 * double(elements);
        const bool doubling = bytes <= eager_limit;
        (doubling ? below : above) += 1;
        sums += doubling ? latency + bytes / bandwidth
                         : 2 * (replicas - 1) * (latency + bytes / replicas / bandwidth);
      }
    }
  EXPECT_EQ(below, 4 * 8);  // a block's two LayerNorms (4) and four biases
  EXPECT_EQ(above, 4 * 4);  // and its four matrices
  const double expected = one_replica + sums;
  EXPECT_NEAR(simulate_step(program), expected, 1e-9 * expected);
}

}  // namespace
}  // namespace plait::simulator
