// Data parallelism: replicas of a one-replica Program, their gradients summed.
//
// Replica k runs the one-replica Program on ranks [k P, (k + 1) P) (P its rank
// count) over its own batch / D samples: the same ops, with message peers moved
// by k P; its collectives of residual norms stay within the replica
// (collective_group). After the step each rank sums its blocks' gradients with
// the ranks at its position in the other replicas (one grad_allreduce), so
// every replica ends with the whole batch's gradients, as the serial step
// (one grad_allreduce per chunk of trained blocks it owns), or, with
// dp_overlap, in buckets as the backward finishes them; with dp_per_tensor
// each chunk's is marked per_tensor (TorchBraid's tensor-by-tensor sum).
#include "detail/data_parallel.hpp"

#include <algorithm>
#include <map>

#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule::detail {
namespace {

struct OpPlace {
  std::size_t section = 0, op = 0;  // after this op
  auto operator<=>(const OpPlace&) const = default;
};

// The rank's gradients summed at the end of its step: one grad_allreduce per
// chunk of trained blocks, packed or (per_tensor) a tensor at a time.
void sum_at_the_end(const Program& program, int position, bool per_tensor, RankProgram& rank) {
  Section sum{.name = "gradient allreduce", .phase = Phase::none, .iteration = false, .repeat = 1, .ops = {}};
  for (const BlockRange& chunk : trained_blocks(program, position)) {
    Op op{.kind = OpKind::grad_allreduce, .block = chunk.first, .span = chunk.end - chunk.first, .per_tensor = per_tensor};
    op.bytes = op.span * block_parameter_count(program.model) * gradient_element_bytes(program.model, op);
    sum.ops.push_back(op);
  }
  rank.sections.push_back(std::move(sum));
}

// DDP's buckets: blocks taken in the order their gradients become final (the
// rank's last gradient op on each), consecutive ones gathered while they are
// contiguous and within bucket_bytes; each bucket's overlapped grad_allreduce
// goes right after the op that finishes it. A gradient finished inside a
// repeated section would repeat its sum: then all go at the end.
void sum_in_buckets(const Program& program, int position, std::int64_t bucket_bytes, RankProgram& rank) {
  std::map<std::int32_t, OpPlace> last;  // by trained block
  for (const BlockRange& chunk : trained_blocks(program, position))
    for (std::int32_t block = chunk.first; block < chunk.end; ++block) last[block] = {};
  bool repeated = false;
  for (std::size_t s = 0; s < rank.sections.size(); ++s)
    for (std::size_t i = 0; i < rank.sections[s].ops.size(); ++i) {
      const Op& op = rank.sections[s].ops[i];
      if (!adds_to_gradient(op) || !last.contains(op.block)) continue;
      last[op.block] = {s, i};
      repeated = repeated || rank.sections[s].repeat != 1;
    }
  if (repeated) {
    sum_at_the_end(program, position, false, rank);
    for (Op& op : rank.sections.back().ops) op.overlap = true;
    return;
  }
  std::vector<std::pair<OpPlace, std::int32_t>> ready;  // (place, block), in the order they are final
  for (const auto& [block, place] : last) ready.emplace_back(place, -block);  // ties: higher blocks first
  std::sort(ready.begin(), ready.end());
  const std::int64_t block_bytes = gradient_bytes(program.model, 1);
  std::vector<std::pair<OpPlace, Op>> sums;
  for (const auto& [place, negated] : ready) {
    const std::int32_t block = -negated;
    Op* bucket = sums.empty() ? nullptr : &sums.back().second;
    const bool joins = bucket && (block == bucket->block - 1 || block == bucket->block + bucket->span) &&
                       bucket->bytes + block_bytes <= bucket_bytes;
    if (!joins) {
      sums.push_back({place, {.kind = OpKind::grad_allreduce, .block = block, .span = 0, .bytes = 0, .overlap = true}});
      bucket = &sums.back().second;
    }
    bucket->block = std::min(bucket->block, block);
    bucket->span += 1;
    bucket->bytes += block_bytes;
    sums.back().first = place;
  }
  // Inserted from the back, so earlier places keep their indices.
  for (auto it = sums.rbegin(); it != sums.rend(); ++it) {
    std::vector<Op>& ops = rank.sections[it->first.section].ops;
    ops.insert(ops.begin() + static_cast<std::ptrdiff_t>(it->first.op) + 1, it->second);
  }
}

}  // namespace

Program data_parallel(const BuildSpec& spec, Program (*build_one_replica)(const BuildSpec&)) {
  const std::int32_t replicas = spec.replicas;
  if (replicas < 1 || replicas > max_ranks) throw Error("dp", "must be in 1.." + std::to_string(max_ranks));
  if (spec.model.kind != "transformer") throw Error("dp", "a " + spec.model.kind + " model has no batch to split");
  if (spec.dp_overlap && spec.bucket_bytes < 1) throw Error("bucket-bytes", "must be >= 1");
  if (spec.dp_overlap && spec.dp_per_tensor)
    throw Error("dp-allreduce", "per-tensor all-reduces block the rank (TorchBraid's): they do not overlap (--dp-overlap)");
  const std::int64_t split = std::int64_t{replicas} * std::max(spec.micro_batches, 1);
  if (spec.model.batch % split != 0)
    throw Error("dp", std::to_string(replicas) + " replicas x " + std::to_string(spec.micro_batches) +
                          " micro-batches do not divide the batch of " + std::to_string(spec.model.batch));
  if (std::int64_t{spec.ranks} * replicas > max_ranks)
    throw Error("dp", std::to_string(spec.ranks) + " ranks x " + std::to_string(replicas) +
                          " replicas is above the limit of " + std::to_string(max_ranks) + " ranks");
  BuildSpec one = spec;
  one.replicas = 1;
  one.model.batch = static_cast<std::int32_t>(spec.model.batch / replicas);
  Program program = build_one_replica(one);
  program.model.batch = spec.model.batch;
  program.replicas = replicas;
  const std::int32_t per_replica = program.ranks;
  program.ranks = per_replica * replicas;
  std::vector<RankProgram> first = std::move(program.rank_programs);
  for (std::int32_t position = 0; position < per_replica; ++position) {
    if (spec.dp_overlap) sum_in_buckets(program, position, spec.bucket_bytes, first[position]);
    else sum_at_the_end(program, position, spec.dp_per_tensor, first[position]);
  }
  program.rank_programs.clear();
  for (std::int32_t replica = 0; replica < (spec.first_replica_only ? 1 : replicas); ++replica) {
    for (std::int32_t position = 0; position < per_replica; ++position) {
      RankProgram rank = first[position];
      for (Section& section : rank.sections)
        for (Op& op : section.ops)
          if (op.kind == OpKind::send || op.kind == OpKind::recv) op.peer += replica * per_replica;
      program.rank_programs.push_back(std::move(rank));
    }
  }
  return program;
}

}  // namespace plait::schedule::detail
