// The fast tier of `plait plan`: each candidate's step from a timed dry run
// (costmodels::StepEstimator) of one replica's Program with a few
// micro-batches, extrapolated to the step's (a pipeline's step is affine in
// its micro-batches once past the warm-up), plus the replicas' gradient sum
// by the ring's closed form. The replica's Program and its memory estimate
// do not depend on the data parallelism, so they are cached without it; a
// sharded one (ZeRO) does: its Program has every replica, its reduce-scatters
// and all-gathers priced in the dry run.
#include <algorithm>
#include <limits>

#include "detail/plan.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::experiments::detail {
namespace {

constexpr int adam_states = 2;

std::string probe_key(const Candidate& candidate, std::pair<int, int> probes) {
  Candidate replica = candidate;
  if (candidate.zero == 0) replica.dp = 1;
  replica.gpus = 0;
  return replica.label() + " @" + std::to_string(probes.first) + "," + std::to_string(probes.second);
}

}  // namespace

PlanEstimator::PlanEstimator(const PlanRequest& request, std::unique_ptr<costmodels::OpPricer> pricer)
    : request_(request), pricer_(std::move(pricer)) {}

costmodels::StepLinks PlanEstimator::links_for(const Candidate& candidate) const {
  const PlanPlatform& platform = request_.platform;
  costmodels::StepLinks links;
  links.ring = {.step_latency_s = platform.intra_latency_s,
                .link_bytes_per_s = platform.intra_bytes_per_s,
                .pass_bytes_per_s = platform.allreduce_pass_bytes_per_s > 0 ? platform.allreduce_pass_bytes_per_s
                                                                            : platform.intra_bytes_per_s};
  const int replica_devices = candidate.tp * candidate.pp;
  const bool multi_node = platform.inter_bytes_per_s > 0;
  // Hierarchical collectives: the estimator tells each message and group that
  // crosses nodes from those that do not; `messages` are a node's own.
  if (multi_node && platform.hierarchical_collectives)
    links.cluster = costmodels::StepLinks::Cluster{
        .devices_per_node = platform.devices_per_node,
        .inter = {.node_bytes_per_s = platform.inter_bytes_per_s,
                  .latency_s = platform.inter_latency_s,
                  .collective_overhead_s = platform.inter_collective_overhead_s}};
  // Otherwise stages on different nodes: a stage's TP shards send through their node's link at once.
  const bool stages_cross = multi_node && !links.cluster && replica_devices > platform.devices_per_node;
  const double latency = stages_cross ? platform.inter_latency_s : platform.intra_latency_s;
  const double bandwidth = stages_cross ? platform.inter_bytes_per_s / candidate.tp : platform.intra_bytes_per_s;
  links.messages.segments = {
      {.max_bytes = std::numeric_limits<std::int64_t>::max(), .latency_s = latency, .seconds_per_byte = 1 / bandwidth}};
  if (links.cluster) return links;
  // Replicas on different nodes: every ring of a node (one per position in the
  // replica, at most the node's devices) shares the node's link.
  if (multi_node && replica_devices * candidate.dp > platform.devices_per_node) {
    const int rings_per_node = std::min(replica_devices, platform.devices_per_node);
    links.gradient_ring = costmodels::RingAllreduceModel{.step_latency_s = platform.inter_latency_s,
                                                         .link_bytes_per_s = platform.inter_bytes_per_s / rings_per_node,
                                                         .pass_bytes_per_s = links.ring.pass_bytes_per_s};
  }
  return links;
}

double PlanEstimator::gradient_sum_seconds(const Candidate& candidate, const costmodels::StepLinks& links,
                                           double bytes) const {
  if (candidate.dp <= 1) return 0;
  if (!links.cluster) return links.gradient_ring.value_or(links.ring).seconds(candidate.dp, bytes);
  // Replica 0's first device and its peers in the other replicas (rank r on device r).
  std::vector<int> devices;
  for (int replica = 0; replica < candidate.dp; ++replica) devices.push_back(replica * candidate.tp * candidate.pp);
  const int per_node = links.cluster->devices_per_node;
  const costmodels::GroupSpan span =
      costmodels::span_of(devices, per_node, std::min(per_node, candidate.tp * candidate.pp * candidate.dp));
  return costmodels::hierarchical_allreduce_seconds(links.ring, links.cluster->inter, span, bytes);
}

PlanEstimator::Probe PlanEstimator::probe(const Candidate& candidate) {
  const std::string key = probe_key(candidate, probe_micro_batches(request_, candidate));
  std::promise<Probe> made;
  std::shared_future<Probe> pending;
  bool mine = false;
  {
    const std::lock_guard lock(mutex_);
    const auto [found, added] = probes_.try_emplace(key);
    if (added) found->second = made.get_future().share(), mine = true;
    pending = found->second;
  }
  if (mine) {
    try {
      made.set_value(make_probe(candidate));
    } catch (...) {
      made.set_exception(std::current_exception());
    }
  }
  return pending.get();  // rethrows the maker's error
}

PlanEstimator::Probe PlanEstimator::make_probe(const Candidate& candidate) const {
  const std::pair<int, int> probes = probe_micro_batches(request_, candidate);
  Probe probe;
  const costmodels::StepLinks links = links_for(candidate);
  for (int i = 0; i < 2; ++i) {
    const int micro_batches = i == 0 ? probes.first : probes.second;
    if (i == 1 && probes.second == probes.first) {
      probe.seconds[1] = probe.seconds[0], probe.memory[1] = probe.memory[0];
      break;
    }
    // A sharded candidate has every replica (its collectives span them), the
    // first one's ops written: all the estimator and the memory read.
    schedule::BuildSpec spec = candidate_spec(request_, candidate, micro_batches, candidate.zero > 0 ? candidate.dp : 1);
    spec.first_replica_only = true;
    schedule::Program program = schedule::build_kind(candidate.kind, spec);
    for (const schedule::RankMemory& rank : schedule::estimate_memory(program, adam_states, true)) {
      probe.memory[i] = std::max(probe.memory[i], double(rank.total()));
      probe.gradient_bytes = std::max(probe.gradient_bytes, double(rank.gradients));
    }
    probe.seconds[i] = costmodels::StepEstimator(std::move(program)).seconds(*pricer_, links);
  }
  return probe;
}

void PlanEstimator::estimate(Candidate& candidate) {
  candidate.device_memory_bytes = request_.platform.device_memory_bytes;
  const double allowed = request_.memory_fraction * request_.platform.device_memory_bytes;
  // What the fullest rank holds at least bounds the memory from below, so
  // most splits that cannot fit are refused without building a Program: the
  // fullest stage's blocks' weights, gradients and Adam state (16 bytes a
  // parameter; frozen blocks their fp16 weights only), or the first stage's
  // (its fewest blocks) with its activations of the micro-batches in flight
  // (all M for GPipe, at least min(M, P) for the others; with frozen blocks,
  // balanced by work, stages differ too much to say).
  // ZeRO: 2 bytes of weights, 2 of gradients and 12 of Adam state, sharded by stage.
  const double dp = candidate.dp;
  const double zero_bytes = candidate.zero == 1   ? 4 + 12 / dp
                            : candidate.zero == 2 ? 2 + 14 / dp
                            : candidate.zero == 3 ? 16 / dp
                                                  : 16;
  const double d = request_.model.d_model, bytes_a_parameter = request_.frozen_blocks > 0 ? 2 : zero_bytes;
  const int most_blocks = (request_.model.layers + candidate.pp - 1) / candidate.pp;
  const int fewest_blocks = request_.model.layers / candidate.pp;
  double floor = bytes_a_parameter * 12 * d * d * most_blocks / candidate.tp;
  if (candidate.kind != "mgrit" && request_.frozen_blocks == 0) {
    const schedule::ModelDesc micro = candidate_spec(request_, candidate, 1, 1).model;
    const int micro_batches = step_micro_batches(request_, candidate);
    const int in_flight = candidate.kind == "gpipe" ? micro_batches : std::min(micro_batches, candidate.pp);
    const double activations = double(in_flight) * fewest_blocks *
                               (candidate.recompute ? double(schedule::state_bytes(micro)) / (candidate.sequence_parallel ? candidate.tp : 1)
                                                   : double(schedule::graph_bytes(micro)));
    floor = std::max(floor, bytes_a_parameter * 12 * d * d * fewest_blocks / candidate.tp + activations);
  }
  if (allowed > 0 && floor > allowed) {
    candidate.memory_bytes = std::int64_t(floor);
    candidate.refused = "memory: needs at least " + schedule::format_bytes(floor) + " of " +
                        schedule::format_bytes(allowed) + " (weights, gradients, Adam state, activations in flight)";
    return;
  }
  try {
    const Probe measured = probe(candidate);
    const std::pair<int, int> probes = probe_micro_batches(request_, candidate);
    const int micro_batches = step_micro_batches(request_, candidate);
    const costmodels::StepLinks links = links_for(candidate);
    // A sharded step's gradient collectives are in its Program.
    const double gradient_sum =
        candidate.zero > 0 ? 0 : gradient_sum_seconds(candidate, links, measured.gradient_bytes);
    candidate.gradient_sum_s = gradient_sum;
    if (candidate.kind == "mgrit") {
      candidate.estimated_s = micro_batches * measured.seconds[0] + gradient_sum;  // accumulation rounds
      candidate.memory_bytes = std::int64_t(measured.memory[0]);
    } else {
      candidate.estimated_s =
          extrapolate(probes, measured.seconds[0], measured.seconds[1], micro_batches) + gradient_sum;
      candidate.memory_bytes = std::int64_t(extrapolate(probes, measured.memory[0], measured.memory[1], micro_batches));
    }
  } catch (const Error& error) {
    candidate.refused = std::string("does not build: ") + error.what();
    return;
  }
  if (allowed > 0 && double(candidate.memory_bytes) > allowed)
    candidate.refused = "memory: needs " + schedule::format_bytes(double(candidate.memory_bytes)) + " of " +
                        schedule::format_bytes(allowed);
}

}  // namespace plait::experiments::detail
