// Per-rank memory estimate of a Program.
#include "plait/schedule/memory.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "plait/schedule/error.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

std::int64_t element_bytes(const ModelDesc& model) {
  return model.kind == "transformer" ? state_bytes(model) / state_elements(model) : 8;
}

std::int64_t ceil_div(std::int64_t value, std::int64_t by) { return (value + by - 1) / by; }

// ZeRO stage 3: the most blocks whose whole parameters are gathered at once,
// on a rank that runs block steps: the block its step runs on, and, when an
// all_gather is a prefetch (overlapped, issued one block step early), the next
// one arriving during that step.
std::int64_t most_gathered_blocks(const RankProgram& rank) {
  bool steps = false, prefetches = false;
  for (const auto& section : rank.sections)
    for (const auto& op : section.ops) {
      steps = steps || is_block_step(op.kind);
      prefetches = prefetches || (op.kind == OpKind::all_gather && op.overlap);
    }
  return steps ? (prefetches ? 2 : 1) : 0;
}

// The most state buffers alive at once: a buffer lives from the op that first
// writes it to the last op that reads it (a section's repeats reuse the same
// buffers, so one pass in order suffices). A pipeline's stage holds its
// in-flight micro-batches' states, not all of them.
std::int64_t most_live_states(const RankProgram& rank) {
  std::map<Buffer, std::pair<std::size_t, std::size_t>> life;  // first write, last use
  std::size_t index = 0;
  for (const auto& section : rank.sections)
    for (const auto& op : section.ops) {
      for (const Buffer* buffer : {&op.dst, &op.a, &op.b, &op.c}) {
        if (buffer->empty() || buffer->space == Space::reg) continue;
        auto [entry, added] = life.try_emplace(*buffer, index, index);
        entry->second.second = index;
      }
      ++index;
    }
  std::vector<std::int64_t> change(index + 1, 0);
  for (const auto& [buffer, span] : life) ++change[span.first], --change[span.second + 1];
  std::int64_t live = 0, most = 0;
  for (const std::int64_t delta : change) most = std::max(most, live += delta);
  return most;
}

}  // namespace

std::int64_t gradient_bytes(const ModelDesc& model, std::int32_t blocks) {
  return blocks * block_parameter_count(model) * element_bytes(model);
}

// The graph one block step keeps for its adjoint, by the model:
//
// A full GPT step (a vocabulary) in fp16 / bf16 runs Megatron's block, and its
// graph is Korthikanti et al. 2022's (Section 4; ../shared/data/megatron-layer)
// exactly, dropout masks included: per layer, s b h (10 + 24 / t) + 5 a s^2 b / t
// bytes, where 10 s b h is outside the tensor-parallel region (the QKV and MLP
// inputs 2 + 2, the two LayerNorms' inputs 2 + 2, the two dropout masks 1 + 1),
// 24 s b h / t inside it (Q and K 4, V 2, the projection's input 2, the GELU's
// and the second MLP matmul's inputs 8 + 8: 8 + 4 mlp_ratio in general) and
// 5 a s^2 b / t the attention core (softmax output 2, its dropout mask 1, the
// dropped-out copy 2). Sequence parallelism splits the 10 s b h over the t
// shards too: s b h / t (34 + 5 a s / h). Selective recompute keeps no
// attention core: s b h (10 + 24 / t), or 34 s b h / t with sequence parallelism.
//
// Otherwise (the block stack, vocab 0, or a GPT step in fp32) the graph is what
// the executor's torch block saves: per token x, LN1 out, y, LN2 out (4 d), q/k/v
// and attended (4 d / T), fc1 and GELU out (2 hidden / T); per head (H / T of
// them) the scores and softmax probabilities (2 seq^2, 3 with the causal mask's
// sum); no dropout. Sequence parallelism splits the 4 d per token over the T
// shards (the LayerNorms and residual adds run on 1 / T of the sequence);
// selective recompute drops the per-head scores and probabilities.
//
// Selective recompute's transient (one layer's attention core, rebuilt in its
// backward) is not counted, as the paper does not; a full recompute's is the
// `recompute` part, one graph_bytes.
std::int64_t graph_bytes(const ModelDesc& model) {
  if (model.kind != "transformer") return 0;
  const std::int64_t tp = std::max(model.tensor_parallel, 1);
  const std::int64_t s = model.seq, b = model.batch, d = model.d_model, heads = model.heads;
  if (model.vocab > 0 && element_bytes(model) == 2) {  // Megatron's block, per s b
    const std::int64_t outside = 10 * d, inside = (8 + 4 * std::int64_t{model.mlp_ratio}) * d;
    const std::int64_t core = model.selective_recompute ? 0 : 5 * heads * s;
    if (model.sequence_parallel) return ceil_div(s * b * (outside + inside + core), tp);
    return s * b * outside + ceil_div(s * b * (inside + core), tp);
  }
  const std::int64_t tokens = b * s, hidden = std::int64_t{model.mlp_ratio} * d;
  const std::int64_t split = model.sequence_parallel ? ceil_div(tokens * 4 * d, tp) : tokens * 4 * d;
  const std::int64_t per_token_sharded = (4 * d + 2 * hidden) / tp;
  const std::int64_t attention =
      model.selective_recompute ? 0 : b * heads / tp * s * s * (model.causal ? 3 : 2);
  return (split + tokens * per_token_sharded + attention) * element_bytes(model);
}

std::vector<RankMemory> estimate_memory(const Program& program, int optimizer_states_per_parameter,
                                        bool first_replica_only) {
  const ModelDesc model = micro_batch_model(program);  // states and graphs hold one micro-batch
  const std::int64_t element = element_bytes(model);
  const std::int64_t block_elements = block_parameter_count(model);
  const std::int64_t parameter_bytes = block_elements * element;
  // Sequence parallelism keeps the residual stream between blocks split over
  // the tensor-parallel shards: each holds 1 / T of a state's sequence.
  const std::int64_t state =
      model.sequence_parallel ? ceil_div(state_bytes(model), std::max(model.tensor_parallel, 1)) : state_bytes(model);
  const std::int64_t graph = graph_bytes(model);
  const std::vector<std::int64_t> held_messages = peak_held_message_bytes(program, first_replica_only);
  // ZeRO (Rajbhandari et al. 2020) over the D replicas: stage 1 holds 1 / D of
  // the optimizer state, stage 2 also of the gradients, stage 3 also of the
  // blocks' parameters (each block's buffer padded to whole elements a replica,
  // as the all_gather ops move it); the ends keep whole parameters (stage 3
  // all-gathers them after the update). Shards round up to whole elements.
  const int stage = program.zero_stage;
  const std::int64_t shards = stage > 0 ? std::max(program.replicas, 1) : 1;
  const std::int64_t block_shard_bytes = ceil_div(block_elements, shards) * element;
  std::vector<RankMemory> out(first_replica_only ? ranks_per_replica(program) : program.ranks);
  for (int rank = 0; rank < static_cast<int>(out.size()); ++rank) {
    RankMemory& memory = out[rank];
    for (const BlockRange& chunk : owned_blocks(program, rank))
      memory.parameters += (chunk.end - chunk.first) * (stage >= 3 ? block_shard_bytes : parameter_bytes);
    std::int64_t gradients = 0;  // whole, before sharding
    for (const BlockRange& chunk : trained_blocks(program, rank))  // frozen blocks have neither
      gradients += (chunk.end - chunk.first) * parameter_bytes;
    const std::int64_t ends = end_parameter_bytes(program, rank);
    memory.parameters += ends;
    gradients += ends;
    const std::int64_t elements = gradients / element;
    const std::int64_t optimized = stage >= 1 ? ceil_div(elements, shards) : elements;  // elements the rank updates
    memory.gradients = stage >= 2 ? ceil_div(elements, shards) * element : gradients;
    // A full step (a vocabulary) keeps fp32 states, and fp32 master weights below fp32.
    const bool mixed_precision = model.vocab > 0;
    memory.optimizer = mixed_precision
                           ? optimized * 4 * (optimizer_states_per_parameter + (element < 4 ? 1 : 0))
                           : optimizer_states_per_parameter * optimized * element;
    // Stage 3: whole parameters of the blocks gathered at once (padded, as gathered).
    if (stage >= 3)
      memory.gathered = most_gathered_blocks(program.rank_programs[rank]) * block_shard_bytes * shards;
    // Kept graphs by (state, block), alive from their step to the adjoint step
    // that releases them: a pipeline holds its in-flight micro-batches' graphs.
    std::set<std::pair<Buffer, std::int32_t>> kept;
    std::size_t most_kept = 0;
    bool recomputes = false;
    for (const auto& section : program.rank_programs[rank].sections) {
      for (const auto& op : section.ops) {
        if (op.kind == OpKind::step && op.graph == GraphUse::keep) kept.insert({op.a, op.block});
        if ((op.kind == OpKind::step_adjoint || op.kind == OpKind::step_weight) && op.graph == GraphUse::release)
          kept.erase({op.c, op.block});
        if (op.kind == OpKind::step_adjoint && op.graph == GraphUse::recompute) recomputes = true;
        most_kept = std::max(most_kept, kept.size());
      }
    }
    memory.states = most_live_states(program.rank_programs[rank]) * state;
    // The buffer blocks at the ends keep their graphs from the forward to the backward.
    memory.kept_graphs = (std::int64_t(most_kept) + held_buffer_blocks(program, rank)) * graph;
    memory.recompute = recomputes ? graph : 0;
    memory.messages = held_messages[rank];
  }
  return out;
}

int optimizer_states_per_parameter(const std::string& optimizer) {
  if (optimizer == "none") return 0;
  if (optimizer == "sgd-momentum") return 1;
  if (optimizer == "adamw") return 2;
  throw Error("optimizer", "unknown optimizer \"" + optimizer + "\" (none, sgd-momentum or adamw)");
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

}  // namespace plait::schedule
