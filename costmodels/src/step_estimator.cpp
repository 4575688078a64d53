// A Program's step time by a timed dry run (see StepEstimator in steps.hpp).
//
// Only the ranks of tensor-parallel shard 0 of replica 0 run: every shard of a
// group runs the same ops and meets the others at each activation all-reduce,
// and replicas meet only in their gradient sums, which start together. The
// Program is compiled once into compact ops whose compute prices are looked
// up per distinct op, so a fit re-prices a step in microseconds.
#include <algorithm>
#include <deque>
#include <map>

#include "plait/costmodels/cluster_links.hpp"
#include "plait/costmodels/steps.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {
namespace {

// The op's fields that its price depends on.
auto price_identity(const schedule::Op& op) {
  return std::tuple(op.kind, op.graph, op.accumulate_grad, op.span, op.level, op.bytes);
}

}  // namespace

StepEstimator::StepEstimator(schedule::Program program) {
  // The pricer needs the Program's settings, not its ops: keep it without them.
  const std::vector<schedule::RankProgram> rank_programs = std::move(program.rank_programs);
  program.rank_programs.clear();
  program_ = std::move(program);
  const int tensor_parallel = std::max(program_.model.tensor_parallel, 1);
  const int per_replica = schedule::ranks_per_replica(program_);
  std::map<int, int> index_of;  // Program rank -> index among the ranks run
  for (int rank = 0; rank < per_replica; rank += tensor_parallel) index_of[rank] = int(index_of.size());
  std::map<decltype(price_identity(schedule::Op{})), int> prices;
  ranks_.resize(index_of.size());
  for (const auto& [rank, index] : index_of) {
    program_rank_.push_back(rank);
    tensor_groups_.push_back(schedule::tensor_group(program_, rank));
  }
  const auto price_of = [&](const schedule::Op& op) {
    const auto [found, added] = prices.try_emplace(price_identity(op), int(priced_.size()));
    if (added) priced_.push_back(op);
    return found->second;
  };
  for (const auto& [rank, index] : index_of) {
    for (const schedule::Section& section : rank_programs[rank].sections)
      for (int repetition = 0; repetition < section.repeat; ++repetition)
        for (const schedule::Op& op : section.ops) {
          CompactOp compact;
          using schedule::OpKind;
          if (op.kind == OpKind::send || op.kind == OpKind::recv) {
            compact.kind = op.kind == OpKind::send ? CompactOp::Kind::send : CompactOp::Kind::recv;
            const auto peer = index_of.find(op.peer);
            if (peer == index_of.end())
              throw Error("step estimate", "rank " + std::to_string(rank) + " messages rank " + std::to_string(op.peer) +
                                               " outside its replica's shard");
            compact.peer = peer->second;
            compact.bytes = op.bytes;
            compact.price = price_of(op);
          } else if (schedule::is_replica_collective(op.kind)) {
            compact.kind = CompactOp::Kind::collective;
            groups_.push_back(schedule::collective_group(program_, rank, op.kind));
            compact.group = int(groups_.back().size());
            compact.members = int(groups_.size()) - 1;
            compact.bytes = op.bytes;
            compact.half = op.kind != OpKind::grad_allreduce;
            compact.overlap = op.overlap;
            if (op.kind == OpKind::all_gather) {
              compact.block = op.block, compact.span = std::max(op.span, 1);
              prefetches_ = prefetches_ || op.overlap;
            }
          } else if (op.kind == OpKind::allreduce) {
            compact.kind = CompactOp::Kind::barrier;  // the replica's stages meet
            compact.bytes = 8;
          } else if (op.kind == OpKind::record_norm) {
            continue;
          } else {
            compact.price = price_of(op);
            compact.tensor_allreduces = schedule::tensor_allreduces(program_, op);
            if (schedule::is_block_step(op.kind)) compact.block = op.block;
          }
          ranks_[index].push_back(compact);
        }
  }
}

double StepEstimator::seconds(const OpPricer& pricer, const StepLinks& links) const {
  std::vector<double> price(priced_.size());
  const int tensor_parallel = std::max(program_.model.tensor_parallel, 1);
  const double activation_bytes = double(schedule::state_bytes(schedule::micro_batch_model(program_)));
  const int ranks = int(ranks_.size());
  // Each rank's activation all-reduce, and a message's time: across nodes
  // when a cluster is given and the group or peer lies on another node.
  const int per_node = links.cluster ? links.cluster->devices_per_node : 0;
  const int busy = std::min(per_node, program_.ranks);
  const auto node_of = [&](int rank) { return rank / per_node; };
  std::vector<double> tensor_allreduce(ranks, 0);
  if (tensor_parallel > 1)
    for (int r = 0; r < ranks; ++r)
      tensor_allreduce[r] = links.cluster ? hierarchical_allreduce_seconds(
                                                links.ring, links.cluster->inter,
                                                span_of(tensor_groups_[r], per_node, busy), activation_bytes)
                                          : links.ring.seconds(tensor_parallel, activation_bytes);
  const auto crosses_nodes = [&](int from, int to) {
    return links.cluster && node_of(program_rank_[from]) != node_of(program_rank_[to]);
  };
  const auto message_seconds = [&](int from, int to, std::int64_t bytes) {
    if (!crosses_nodes(from, to)) return links.messages.seconds(bytes);
    // Out of the device, then through its node's NICs with the stage's other shards.
    return links.messages.seconds(0) +
           inter_node_message_seconds(links.cluster->inter, std::min(tensor_parallel, per_node), double(bytes));
  };
  // A reduce-scatter or all-gather (ZeRO) is half the ring all-reduce: its
  // D - 1 steps of latency and bytes / D, without the all-reduce's pass.
  const auto collective_seconds = [&](const CompactOp& op) {
    if (op.group <= 1) return 0.0;
    if (!links.cluster) {
      const RingAllreduceModel& ring = links.gradient_ring.value_or(links.ring);
      return op.half ? hierarchical_gather_seconds(ring, {}, GroupSpan{.nodes = 1, .per_node = op.group}, double(op.bytes))
                     : ring.seconds(op.group, double(op.bytes));
    }
    const GroupSpan span = span_of(groups_[op.members], per_node, busy);
    return op.half ? hierarchical_gather_seconds(links.ring, links.cluster->inter, span, double(op.bytes))
                   : hierarchical_allreduce_seconds(links.ring, links.cluster->inter, span, double(op.bytes));
  };
  const auto across_nodes = [&](const CompactOp& op) {
    return links.cluster && span_of(groups_[op.members], per_node, busy).nodes > 1;
  };
  for (std::size_t i = 0; i < priced_.size(); ++i) price[i] = pricer.op_seconds(program_, priced_[i]);
  std::vector<std::size_t> next(ranks, 0);
  std::vector<double> clock(ranks, 0);
  // Each rank's communication stream (Op::overlap: DDP's buckets, ZeRO's
  // reduce-scatters, FSDP's prefetched gathers, one after another as NCCL
  // runs them): when it is free, and when each block's last gather pushed
  // ends (a block step waits for it). The replicas run in lockstep, so a
  // collective starts as soon as the stream is free.
  std::vector<double> stream(ranks, 0);
  std::vector<std::vector<double>> gathered(prefetches_ ? ranks : 0, std::vector<double>(program_.layers, 0));
  // A message sent at `sent` takes `transfer`; one between nodes starts when
  // its receiver posts it too (a rendezvous, as NCCL's send and receive).
  struct Message {
    double sent = 0, transfer = 0;
    bool rendezvous = false;
  };
  std::map<std::pair<int, int>, std::deque<Message>> arrivals;  // (from, to) -> messages in flight
  std::vector<int> at_barrier;
  std::deque<int> runnable;
  std::vector<char> queued(ranks, 1);
  for (int r = 0; r < ranks; ++r) runnable.push_back(r);
  const auto wake = [&](int r) {
    if (!queued[r]) queued[r] = 1, runnable.push_back(r);
  };
  while (!runnable.empty()) {
    const int r = runnable.front();
    runnable.pop_front();
    queued[r] = 0;
    bool blocked = false;
    while (!blocked && next[r] < ranks_[r].size()) {
      const CompactOp& op = ranks_[r][next[r]];
      switch (op.kind) {
        case CompactOp::Kind::compute:
          if (prefetches_ && op.block >= 0 && op.block < program_.layers)
            clock[r] = std::max(clock[r], gathered[r][op.block]);
          clock[r] += price[op.price] + op.tensor_allreduces * tensor_allreduce[r];
          break;
        case CompactOp::Kind::send:
          clock[r] += price[op.price];
          arrivals[{r, op.peer}].push_back({clock[r], message_seconds(r, op.peer, op.bytes), crosses_nodes(r, op.peer)});
          wake(op.peer);
          break;
        case CompactOp::Kind::recv: {
          auto& queue = arrivals[{op.peer, r}];
          if (queue.empty()) {
            blocked = true;
            continue;
          }
          const Message& message = queue.front();
          clock[r] = (message.rendezvous ? std::max(clock[r], message.sent) + message.transfer
                                         : std::max(clock[r], message.sent + message.transfer)) +
                     price[op.price];
          queue.pop_front();
          break;
        }
        case CompactOp::Kind::collective:
          if (!op.overlap) {
            double seconds = collective_seconds(op);
            // In place while the stream's collectives are in flight: the two
            // rings (the same group's) share their links, each at half speed
            // until the shorter is done (what SimGrid simulates), so both
            // are late by that overlap. Not across nodes (closed forms there).
            if (const double now = clock[r]; stream[r] > now && !across_nodes(op)) {
              const double shared = std::min(seconds, stream[r] - now);
              if (prefetches_)
                for (double& ready : gathered[r])
                  if (ready > now) ready += std::min(ready - now, seconds);
              stream[r] += shared;
              seconds += shared;
            }
            clock[r] += seconds;
            break;
          }
          stream[r] = std::max(stream[r], clock[r]) + collective_seconds(op);
          if (prefetches_ && op.block >= 0)
            for (int block = op.block; block < std::min(op.block + op.span, program_.layers); ++block)
              gathered[r][block] = stream[r];
          break;
        case CompactOp::Kind::barrier:
          at_barrier.push_back(r);
          ++next[r];
          blocked = true;
          if (int(at_barrier.size()) == ranks) {
            double meet = 0;
            for (int waiting : at_barrier) meet = std::max(meet, clock[waiting]);
            for (int waiting : at_barrier) clock[waiting] = meet + links.ring.seconds(ranks, double(op.bytes)), wake(waiting);
            at_barrier.clear();
          }
          continue;
      }
      ++next[r];
    }
  }
  for (int r = 0; r < ranks; ++r) {
    if (next[r] < ranks_[r].size()) throw Error("step estimate", "rank " + std::to_string(r) + " never finishes (deadlock)");
    clock[r] = std::max(clock[r], stream[r]);  // the rank's overlapped collectives done by the end of its step
  }
  return *std::max_element(clock.begin(), clock.end());
}

}  // namespace plait::costmodels
