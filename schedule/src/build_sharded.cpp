// Sharded data parallelism (ZeRO stages 1-3, FSDP), applied to a finished
// data-parallel Program: its gradient sums, optimizer step and block steps
// rewritten per rank (the replicas run the same ops, so one rule serves all).
//
// Stage 1: the gradient sums stay all-reduces; the update covers the rank's
// 1 / D shard; each sum's buffer is then all-gathered, updated parameters in
// place of gradients. Stage 2: the sums become reduce-scatters. Stage 3: the
// block parameters live sharded too: every block step is preceded by an
// all-gather of its block (one for a run of steps on the same block), with
// `prefetch` issued one block step early on the communication stream; the
// gradients are reduce-scattered a block at a time as the backward finishes
// them (data_parallel buckets them so); the ends (embedding, head), whose
// gradients join the last of those, are all-gathered with it after the update.
#include <algorithm>

#include "detail/data_parallel.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::schedule::detail {
namespace {

std::int64_t element_size(const ModelDesc& model) { return state_bytes(model) / state_elements(model); }

// Whole elements, rounded up to a multiple of the replicas (ZeRO and FSDP pad
// their flat buffers so), in bytes.
std::int64_t padded(std::int64_t bytes, std::int64_t replicas, std::int64_t element) {
  const std::int64_t elements = (bytes + element - 1) / element;
  return (elements + replicas - 1) / replicas * replicas * element;
}

// Stage 3: an all_gather of a block before each run of steps on it; with
// prefetch, each after the first moved to just before the previous step and
// overlapped (the step on its block waits for it).
void gather_before_steps(Section& section, std::int64_t block_bytes, bool prefetch) {
  std::vector<Op> out;
  out.reserve(section.ops.size() * 2);
  std::int32_t gathered = -1;
  std::ptrdiff_t previous_step = -1;  // in `out`: where the last block step went
  for (const Op& op : section.ops) {
    if (is_block_step(op.kind) && op.block != gathered) {
      Op gather{.kind = OpKind::all_gather, .block = op.block, .span = 1, .bytes = block_bytes};
      if (prefetch && previous_step >= 0) {
        gather.overlap = true;
        out.insert(out.begin() + previous_step, gather);
      } else {
        out.push_back(gather);
      }
      gathered = op.block;
    }
    if (is_block_step(op.kind)) previous_step = static_cast<std::ptrdiff_t>(out.size());
    out.push_back(op);
  }
  section.ops = std::move(out);
}

}  // namespace

void shard_data_parallel(Program& program, const BuildSpec& spec) {
  const std::int32_t stage = spec.zero_stage;
  if (stage == 0) return;
  if (stage < 0 || stage > 3) throw Error("zero", "the ZeRO stage must be 1, 2 or 3, got " + std::to_string(stage));
  const std::int64_t replicas = program.replicas;
  if (replicas < 2) throw Error("zero", "shards over data-parallel replicas: it needs --dp >= 2");
  if (spec.prefetch && stage != 3) throw Error("prefetch", "prefetches the parameters stage 3 (FSDP) gathers: it needs --zero 3");
  program.zero_stage = stage;
  const std::int64_t element = element_size(program.model);
  const std::int64_t block_bytes = padded(gradient_bytes(program.model, 1), replicas, element);
  for (int rank = 0; rank < static_cast<int>(program.rank_programs.size()); ++rank) {  // all, or the first replica's
    RankProgram& ops = program.rank_programs[rank];
    std::vector<Op> sums;  // the gradient collectives, mirrored by the parameter gathers
    for (Section& section : ops.sections) {
      for (Op& op : section.ops) {
        if (op.kind == OpKind::grad_allreduce) {
          op.bytes = padded(op.bytes, replicas, element);
          if (stage >= 2) op.kind = OpKind::reduce_scatter;
          sums.push_back(op);
        }
        if (op.kind == OpKind::update) op.bytes = padded(op.bytes, replicas, element) / replicas;
      }
      if (stage == 3) gather_before_steps(section, block_bytes, spec.prefetch);
    }
    // The updated shards gathered: every gradient buffer (stages 1, 2), or at
    // stage 3 only the one carrying the ends (its blocks' part is gathered
    // again before their next step: a small overcount, one block's gather).
    Section gathers{.name = "parameter all-gather", .phase = Phase::none, .iteration = false, .repeat = 1, .ops = {}};
    const bool has_ends = end_parameter_bytes(program, rank) > 0;
    for (std::size_t i = 0; i < sums.size(); ++i)
      if (stage < 3 || (i + 1 == sums.size() && has_ends))
        gathers.ops.push_back({.kind = OpKind::all_gather, .block = sums[i].block, .span = sums[i].span,
                               .bytes = sums[i].bytes});
    if (!gathers.ops.empty()) ops.sections.push_back(std::move(gathers));
  }
}

Program sharded(const BuildSpec& spec, Program (*build)(const BuildSpec&)) {
  if (spec.dp_per_tensor) throw Error("zero", "per-tensor all-reduces (TorchBraid's) are not sharded: use packed or bucketed");
  BuildSpec plain = spec;
  plain.zero_stage = 0;
  plain.prefetch = false;
  if (spec.zero_stage == 3) {  // each block's gradients reduce-scattered once its backward is done
    plain.dp_overlap = true;
    plain.bucket_bytes = 1;
  }
  Program program = build(plain);
  shard_data_parallel(program, spec);
  return program;
}

}  // namespace plait::schedule::detail
