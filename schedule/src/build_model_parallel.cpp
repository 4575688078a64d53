// Tensor parallelism (Megatron) and the ends of a full GPT training step,
// applied to a Program built for the plain block stack.
//
// Rank r of the block-stack Program becomes ranks r T .. r T + T - 1: the
// same ops, each on its 1 / T of every block's heads and MLP columns (the
// block-step ops imply their activation all-reduces: tensor_allreduces). A
// message goes to the same shard of the peer and carries 1 / T of the state
// (Megatron's scatter-gather); a gradient sum covers the shard's parameters.
// With a vocabulary, the rank holding block 0 also holds the word (1 / T of
// the vocabulary) and position embeddings, the rank holding the last block
// the final LayerNorm and the output layer (tied to the word embedding, a
// copy of it when the stages differ); their gradients join the replicas' sum,
// and every rank ends with one update (the optimizer step) over what it holds.
#include "detail/model_parallel.hpp"

#include <algorithm>

#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule::detail {
namespace {

void expand_tensor_parallel(Program& program) {
  const int tp = program.model.tensor_parallel;
  if (tp == 1) return;
  std::vector<RankProgram> expanded;
  expanded.reserve(program.rank_programs.size() * tp);
  for (const RankProgram& rank : program.rank_programs)
    for (int shard = 0; shard < tp; ++shard) {
      RankProgram copy = rank;
      for (Section& section : copy.sections)
        for (Op& op : section.ops) {
          if (op.kind == OpKind::send || op.kind == OpKind::recv) {
            op.peer = op.peer * tp + shard;
            op.bytes = (op.bytes + tp - 1) / tp;
          }
          if (op.kind == OpKind::grad_allreduce) op.bytes = gradient_bytes(program.model, op.span);
        }
      expanded.push_back(std::move(copy));
    }
  program.rank_programs = std::move(expanded);
  program.ranks *= tp;
}

// The rank's blocks' parameters, and the embedding and output layer where it holds them.
void add_step_ends(Program& program) {
  for (int rank = 0; rank < static_cast<int>(program.rank_programs.size()); ++rank) {  // all, or the first replica's
    std::int64_t bytes = 0;
    for (const BlockRange& chunk : trained_blocks(program, rank)) bytes += gradient_bytes(program.model, chunk.end - chunk.first);
    const std::int64_t ends = end_parameter_bytes(program, rank);
    bytes += ends;
    RankProgram& ops = program.rank_programs[rank];
    // The ends' gradients are final only when the last of the rank's gradient
    // sums runs (with buckets, the one that sums block 0's): they join it.
    if (ends > 0)
      for (auto section = ops.sections.rbegin(); section != ops.sections.rend(); ++section) {
        auto sum = std::find_if(section->ops.rbegin(), section->ops.rend(),
                                [](const Op& op) { return op.kind == OpKind::grad_allreduce; });
        if (sum == section->ops.rend()) continue;
        sum->bytes += end_gradient_bytes(program, rank, *sum);
        break;
      }
    ops.sections.push_back({.name = "optimizer", .phase = Phase::none, .iteration = false, .repeat = 1,
                            .ops = {{.kind = OpKind::update, .bytes = bytes}}});
  }
}

}  // namespace

bool needs_model_parallel(const BuildSpec& spec) {
  return spec.model.tensor_parallel != 1 || spec.model.vocab != 0;
}

Program model_parallel(const BuildSpec& spec, Program (*build)(const BuildSpec&)) {
  check_model(spec.model);
  if (spec.model.kind != "transformer")
    throw Error("model", "tensor parallelism and a vocabulary need a transformer, not " + spec.model.kind);
  if (std::int64_t{spec.ranks} * spec.replicas * spec.model.tensor_parallel > max_ranks)
    throw Error("tp", "ranks x dp x tp is above the limit of " + std::to_string(max_ranks) + " ranks");
  if (spec.dp_per_tensor && spec.model.tensor_parallel != 1)
    throw Error("dp-allreduce", "per-tensor all-reduces model TorchBraid, which has no tensor parallelism");
  BuildSpec blocks = spec;
  blocks.model.tensor_parallel = 1;
  blocks.model.vocab = 0;
  blocks.model.buffer_blocks = 0;
  blocks.model.sequence_parallel = false;
  Program program = build(blocks);
  program.model = spec.model;
  expand_tensor_parallel(program);
  if (program.model.vocab > 0) add_step_ends(program);
  return program;
}

}  // namespace plait::schedule::detail
