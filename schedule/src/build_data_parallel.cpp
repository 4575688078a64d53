// Data parallelism: replicas of a one-replica Program, their gradients summed.
//
// Replica k runs the one-replica Program on ranks [k P, (k + 1) P) (P its rank
// count) over its own batch / D samples: the same ops, with message peers moved
// by k P; its collectives of residual norms stay within the replica
// (collective_group). After the step each rank sums its blocks' gradients with
// the ranks at its position in the other replicas (one grad_allreduce), so
// every replica ends with the whole batch's gradients, as the serial step
// (one grad_allreduce per chunk of trained blocks it owns).
#include "detail/data_parallel.hpp"

#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule::detail {

Program data_parallel(const BuildSpec& spec, Program (*build_one_replica)(const BuildSpec&)) {
  const std::int32_t replicas = spec.replicas;
  if (replicas < 1 || replicas > max_ranks) throw Error("dp", "must be in 1.." + std::to_string(max_ranks));
  if (spec.model.kind != "transformer") throw Error("dp", "a " + spec.model.kind + " model has no batch to split");
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
  const std::vector<RankProgram> first = std::move(program.rank_programs);
  program.rank_programs.clear();
  for (std::int32_t replica = 0; replica < replicas; ++replica) {
    for (std::int32_t position = 0; position < per_replica; ++position) {
      RankProgram rank = first[position];
      for (Section& section : rank.sections)
        for (Op& op : section.ops)
          if (op.kind == OpKind::send || op.kind == OpKind::recv) op.peer += replica * per_replica;
      Section sum{.name = "gradient allreduce", .phase = Phase::none, .iteration = false, .repeat = 1, .ops = {}};
      for (const BlockRange& chunk : trained_blocks(program, position)) {
        const std::int32_t blocks = chunk.end - chunk.first;
        sum.ops.push_back({.kind = OpKind::grad_allreduce, .block = chunk.first, .span = blocks,
                           .bytes = gradient_bytes(program.model, blocks)});
      }
      rank.sections.push_back(std::move(sum));
      program.rank_programs.push_back(std::move(rank));
    }
  }
  return program;
}

}  // namespace plait::schedule::detail
