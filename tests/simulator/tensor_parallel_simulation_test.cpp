// Tensor parallelism in the simulator: a shard's block steps cost their price
// plus their activation all-reduces, each a ring over the tensor-parallel
// group (2 (T - 1) steps of a T-th of the state) at its closed form, two a
// forward step and two a backward step, without a message of their own.
#include <gtest/gtest.h>

#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/simulator/simulator.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;

constexpr double latency = 1e-6, bandwidth = 1e9, forward_s = 1e-3, gradient_s = 2e-3;

TEST(TensorParallelSimulation, BlockStepsAddTheirActivationAllReduceRings) {
  for (const int tp : {2, 4}) {
    schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 1, 1);
    spec.model.tensor_parallel = tp;
    const schedule::Program program = schedule::build_serial(spec);
    ASSERT_EQ(program.ranks, tp);
    const auto simulated = [&](double Prediction::*time, std::int64_t Prediction::*count) {
      return in_child_process([&] {
        SimulateOptions options;
        options.allreduce = AllreduceAlgorithm::ring;
        const Prediction prediction = simulate(program, cluster(1, tp, link(latency, bandwidth)),
                                               block_pricers(forward_s, gradient_s, gradient_s), options);
        return time ? prediction.*time : double(prediction.*count);
      });
    };
    const double seconds = simulated(&Prediction::predicted_time_s, nullptr);
    const double messages = simulated(nullptr, &Prediction::messages);
    const double state = 8 * 8 * 32 * 4;
    const double ring = 2 * (tp - 1) * (latency + state / tp / bandwidth);
    const int allreduces = 4 * (2 + 2);  // 4 blocks: a forward and a backward step each
    EXPECT_NEAR(seconds, 4 * (forward_s + gradient_s) + allreduces * ring, 1e-9) << tp << " shards";
    EXPECT_EQ(messages, 0) << "priced in closed form, not sent message by message";
  }
}

// A group wider than a node: NCCL's hierarchical all-reduce, the ring inside
// each node then a ring over the nodes' NICs (costmodels/cluster_links.hpp).
TEST(TensorParallelSimulation, AGroupAcrossNodesTakesTheHierarchicalAllReduce) {
  constexpr int tp = 4;
  schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 1, 1);
  spec.model.tensor_parallel = tp;
  const schedule::Program program = schedule::build_serial(spec);
  const double nic_latency = 20e-6, nic_bandwidth = 2e8, overhead = 50e-6;
  const double seconds = in_child_process([&] {
    PlatformSpec platform = cluster(2, 2, link(latency, bandwidth), link(nic_latency, nic_bandwidth));
    platform.inter_node.collective_overhead_s = overhead;
    return simulate(program, platform, block_pricers(forward_s, gradient_s, gradient_s)).predicted_time_s;
  });
  const double state = 8 * 8 * 32 * 4;
  const double inside = 2 * (2 - 1) * (latency + state / 2 / bandwidth);  // 2 shards a node
  const double across = overhead + inside + 2 * (2 - 1) * (nic_latency + state / (2 * nic_bandwidth));
  EXPECT_NEAR(seconds, 4 * (forward_s + gradient_s) + 4 * (2 + 2) * across, 1e-9);
}

}  // namespace
}  // namespace plait::simulator
