// Sharded data parallelism (ZeRO / FSDP) in the simulator: a reduce-scatter
// and an all-gather are each half the ring all-reduce, D - 1 messages of a
// D-th of the buffer to the next replica; across nodes with hierarchical
// collectives, cluster_links.hpp's closed form. FSDP's prefetched gathers run
// on the communication stream while the rank computes, and a block step waits
// for its block's; the step estimator prices the same.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <vector>

#include "plait/costmodels/steps.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/simulator/simulator.hpp"
#include "pipeline_spec.hpp"
#include "support.hpp"

namespace plait::simulator {
namespace {

using namespace testing;
namespace keys = schedule::cost_keys;

// Every op event of a simulation.
class Events final : public EventListener {
 public:
  void on_op(const OpEvent& event) override { events.push_back(event); }
  std::vector<OpEvent> events;
};

// Runs `simulation` in a forked child (one SimGrid engine a process) and
// returns the numbers it produced; empty when the child failed.
std::vector<double> in_child(const std::function<std::vector<double>()>& simulation) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::vector<double> values;
    try {
      values = simulation();
    } catch (...) {
      _exit(1);
    }
    const std::size_t count = values.size();
    bool ok = write(fds[1], &count, sizeof count) == sizeof count;
    for (double value : values) ok = ok && write(fds[1], &value, sizeof value) == sizeof value;
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::vector<double> values;
  std::size_t count = 0;
  if (read(fds[0], &count, sizeof count) == sizeof count && count < (1u << 24)) {
    values.resize(count);
    for (double& value : values)
      if (read(fds[0], &value, sizeof value) != sizeof value) {
        values.clear();
        break;
      }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return values;
}

bool sharded(const OpEvent& event) { return event.cost_key == keys::reduce_scatter || event.cost_key == keys::all_gather; }

// The ring's reduce-scatter or all-gather of `bytes` (the whole buffer) over D replicas.
double ring_half(int replicas, double latency, double bandwidth, double bytes) {
  return (replicas - 1) * (latency + bytes / replicas / bandwidth);
}

// Each reduce-scatter and all-gather a ZeRO-2 1F1B step of 2 stages takes
// (blocking: in the rank's own events) is the ring's closed form. The
// replicas run in lockstep, so every member enters together.
TEST(ShardedSimulation, ReduceScatterAndAllGatherTakeTheRingsClosedForm) {
  constexpr double latency = 2e-6, bandwidth = 5e8;
  for (int replicas : {2, 4}) {
    schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 2, 2);
    spec.replicas = replicas;
    spec.zero_stage = 2;
    const schedule::Program program = schedule::build_1f1b(spec);
    // Per event: rank, kind (0 reduce-scatter, 1 all-gather), bytes, seconds.
    const std::vector<double> out = in_child([&] {
      Events events;
      SimulateOptions options;
      options.listeners.push_back(&events);
      simulate(program, cluster(1, program.ranks, link(latency, bandwidth)), block_pricers(1e-3, 2e-3, 2e-3), options);
      std::vector<double> values;
      for (const OpEvent& event : events.events)
        if (sharded(event))
          values.insert(values.end(), {double(event.rank), event.cost_key == keys::all_gather ? 1.0 : 0.0,
                                       double(event.bytes), event.end - event.start});
      return values;
    });
    ASSERT_EQ(out.size(), 4u * 2 * program.ranks) << replicas << " replicas";  // one of each a rank
    const double message_s = double(schedule::state_bytes(schedule::micro_batch_model(program))) / bandwidth;
    for (std::size_t i = 0; i < out.size(); i += 4) {
      const double bytes = out[i + 2];
      EXPECT_EQ(std::fmod(bytes, replicas), 0.0);  // padded to whole shards
      const double expected = ring_half(replicas, latency, bandwidth, bytes);
      // The last stage sent its last state gradient just before: SimGrid
      // shares its link with the ring's first message for up to that
      // message's transfer (as the gradient all-reduce's test allows).
      const bool last_stage = int(out[i]) % 2 == 1 && out[i + 1] == 0;
      EXPECT_NEAR(out[i + 3], expected, 1e-6 * expected + (last_stage ? message_s : 0))
          << replicas << " replicas, rank " << out[i] << (out[i + 1] == 1 ? " all-gather" : " reduce-scatter");
    }
  }
}

// With hierarchical collectives across nodes: the group meets, then takes
// NCCL's hierarchical gather (a ring inside each node, one over the nodes):
// 4 replicas of one rank on 2 nodes of 2.
TEST(ShardedSimulation, AcrossNodesTheyTakeTheHierarchicalClosedForm) {
  constexpr double latency = 1e-6, bandwidth = 1e9, nic_latency = 10e-6, nic_bandwidth = 5e8, overhead = 40e-6;
  schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 1, 1);
  spec.replicas = 4;
  spec.zero_stage = 2;
  const schedule::Program program = schedule::build_1f1b(spec);
  const std::vector<double> out = in_child([&] {
    PlatformSpec platform = cluster(2, 2, link(latency, bandwidth), link(nic_latency, nic_bandwidth));
    platform.inter_node.hierarchical_collectives = true;
    platform.inter_node.collective_overhead_s = overhead;
    Events events;
    SimulateOptions options;
    options.listeners.push_back(&events);
    simulate(program, platform, block_pricers(1e-3, 2e-3, 2e-3), options);
    std::vector<double> values;
    for (const OpEvent& event : events.events)
      if (sharded(event)) values.insert(values.end(), {double(event.bytes), event.end - event.start});
    return values;
  });
  ASSERT_EQ(out.size(), 2u * 2 * 4);
  for (std::size_t i = 0; i < out.size(); i += 2) {
    const double bytes = out[i];
    const double expected = overhead + (2 - 1) * (latency + bytes / 2 / bandwidth) +
                            (2 - 1) * (nic_latency + bytes / (2 * nic_bandwidth));
    EXPECT_NEAR(out[i + 1], expected, 1e-9 * expected);
  }
}

// FSDP on 2 replicas of one rank, a block's gather (~1.5 ms) longer than its
// forward step (1 ms): prefetched one step early on the communication stream,
// the gathers hide behind the steps, so the step is no longer than gathering
// each block in place; and no block step starts before its block's last
// gather pushed has ended. The stream's collectives are replayed here in
// issue order at the ring's closed form (each starts when the stream is free
// and its op is issued; with one rank a replica no other message shares the links).
TEST(ShardedSimulation, APrefetchedGatherOverlapsComputeAndItsBlockStepWaitsForIt) {
  constexpr double latency = 1e-6;
  schedule::BuildSpec spec = plait::testing::pipeline_spec(4, 1, 2);
  spec.replicas = 2;
  spec.zero_stage = 3;
  const schedule::Program in_place = schedule::build_gpipe(spec);
  spec.prefetch = true;
  const schedule::Program prefetched = schedule::build_gpipe(spec);
  std::int64_t block_bytes = 0;
  for (const schedule::Op& op : in_place.rank_programs[0].sections[0].ops)
    if (op.kind == schedule::OpKind::all_gather) block_bytes = op.bytes;
  ASSERT_GT(block_bytes, 0);
  const double bandwidth = double(block_bytes) / 2 / 1.5e-3;  // a gather: latency + 1.5 ms
  const auto simulated = [&](const schedule::Program& program) {
    return in_child([&] {
      Events events;
      SimulateOptions options;
      options.listeners.push_back(&events);
      const Prediction prediction = simulate(program, cluster(1, program.ranks, link(latency, bandwidth)),
                                             block_pricers(1e-3, 2e-3, 2e-3), options);
      // Step time, then per event of rank 0: section, op index, start, end.
      std::vector<double> values{prediction.predicted_time_s, prediction.rank_reports[0].busy_s,
                                 prediction.rank_reports[0].communication_s, prediction.rank_reports[0].idle_s};
      for (const OpEvent& event : events.events)
        if (event.rank == 0) values.insert(values.end(), {double(event.section), double(event.op), event.start, event.end});
      return values;
    });
  };
  const std::vector<double> slow = simulated(in_place), fast = simulated(prefetched);
  ASSERT_GT(slow.size(), 4u);
  ASSERT_GT(fast.size(), 4u);
  EXPECT_LT(fast[0], slow[0]);
  // Busy, communication and idle still add up to the step.
  EXPECT_NEAR(fast[1] + fast[2] + fast[3], fast[0], 1e-9 * fast[0]);

  const double gather = ring_half(2, latency, bandwidth, double(block_bytes));
  double stream_free = 0, previous_end = 0;
  std::map<int, double> gathered;  // block -> when its last gather pushed ends
  int steps = 0, waited = 0;
  for (std::size_t i = 4; i < fast.size(); i += 4) {
    const schedule::Op& op =
        prefetched.rank_programs[0].sections[std::size_t(fast[i])].ops[std::size_t(fast[i + 1])];
    const double start = fast[i + 2], end = fast[i + 3];
    if (op.overlap) {
      stream_free = std::max(stream_free, start) + ring_half(2, latency, bandwidth, double(op.bytes));
      if (op.kind == schedule::OpKind::all_gather) gathered[op.block] = stream_free;
    } else if (op.kind == schedule::OpKind::all_gather) {
      gathered[op.block] = end;
      EXPECT_NEAR(end - start, gather, 1e-9 * gather);
    }
    if (schedule::is_block_step(op.kind)) {
      ++steps;
      ASSERT_TRUE(gathered.contains(op.block)) << "step on block " << op.block << " without a gather";
      EXPECT_GE(start, gathered[op.block] - 1e-12) << "op " << fast[i + 1];
      if (start > previous_end + 1e-12) {  // it waited: until its gather ended, not longer
        ++waited;
        EXPECT_NEAR(start, gathered[op.block], 1e-9) << "op " << fast[i + 1];
      }
    }
    previous_end = end;
  }
  EXPECT_EQ(steps, 4 * 2 * 2);
  EXPECT_GT(waited, 0);  // the gathers are longer than the forward steps: some steps wait
}

// The step estimator's dry run against SimGrid: ZeRO-2 (blocking
// reduce-scatters and all-gathers) and ZeRO-3 (gathers before the steps,
// overlapped reduce-scatters; with and without prefetch), on replicas of one
// rank and of a 2-stage 1F1B. Communication is comparable to compute: a
// block's gather 1 ms (0.5 ms with the pipeline, whose state messages share
// the links with the rings in SimGrid, which the estimator leaves out).
TEST(ShardedSimulation, TheStepEstimatorAgreesWithSimGrid) {
  constexpr double latency = 2e-6;
  const PricerFactory pricers = block_pricers(1e-3, 2e-3, 2e-3);
  const std::shared_ptr<const costmodels::OpPricer> pricer = pricers(DeviceUse{});
  for (int stages : {1, 2})
    for (const auto& [stage, prefetch] : {std::pair{2, false}, {3, false}, {3, true}}) {
      schedule::BuildSpec spec = plait::testing::pipeline_spec(4, stages, 2);
      spec.replicas = 2;
      spec.zero_stage = stage;
      spec.prefetch = prefetch;
      const schedule::Program program = schedule::build_1f1b(spec);
      const double gather_s = stages == 1 ? 1e-3 : 0.5e-3;
      const double bandwidth = double(schedule::gradient_bytes(program.model, 1)) / 2 / gather_s;
      const double simulated = in_child_process([&] {
        return simulate(program, cluster(1, program.ranks, link(latency, bandwidth)), pricers).predicted_time_s;
      });
      costmodels::StepLinks links;
      links.ring = {.step_latency_s = latency, .link_bytes_per_s = bandwidth,
                    .pass_bytes_per_s = std::numeric_limits<double>::infinity()};
      links.messages.segments = {{.max_bytes = std::numeric_limits<std::int64_t>::max(), .latency_s = latency,
                                  .seconds_per_byte = 1 / bandwidth}};
      const double estimated = costmodels::StepEstimator(program).seconds(*pricer, links);
      EXPECT_NEAR(estimated / simulated, 1, 0.01)
          << stages << " stage(s), ZeRO-" << stage << (prefetch ? " with prefetch" : "");
    }
}

}  // namespace
}  // namespace plait::simulator
