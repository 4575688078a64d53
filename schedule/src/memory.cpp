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

std::int64_t graph_bytes(const ModelDesc& model) {
  if (model.kind != "transformer") return 0;
  const std::int64_t tokens = std::int64_t{model.batch} * model.seq, d = model.d_model;
  const std::int64_t hidden = std::int64_t{model.mlp_ratio} * d;
  // Per token: x, LN1 out, y, LN2 out (4 d), q/k/v, attended (4 d / T) and fc1 out, GELU out
  // (2 hidden / T); per head (H / T of them): scores and softmax probabilities (2 seq^2, 3
  // with the causal mask's sum). T tensor-parallel ranks.
  const std::int64_t tp = std::max(model.tensor_parallel, 1);
  const std::int64_t per_token = 4 * d + (4 * d + 2 * hidden) / tp;
  const std::int64_t attention =
      std::int64_t{model.batch} * model.heads / tp * model.seq * model.seq * (model.causal ? 3 : 2);
  return (tokens * per_token + attention) * element_bytes(model);
}

std::vector<RankMemory> estimate_memory(const Program& program, int optimizer_states_per_parameter) {
  const ModelDesc model = micro_batch_model(program);  // states and graphs hold one micro-batch
  const std::int64_t parameter_bytes = block_parameter_count(model) * element_bytes(model);
  const std::int64_t state = state_bytes(model);
  const std::int64_t graph = graph_bytes(model);
  const std::vector<std::int64_t> held_messages = peak_held_message_bytes(program);
  std::vector<RankMemory> out(program.ranks);
  for (int rank = 0; rank < program.ranks; ++rank) {
    RankMemory& memory = out[rank];
    for (const BlockRange& chunk : owned_blocks(program, rank))
      memory.parameters += (chunk.end - chunk.first) * parameter_bytes;
    for (const BlockRange& chunk : trained_blocks(program, rank))  // frozen blocks have neither
      memory.gradients += (chunk.end - chunk.first) * parameter_bytes;
    const std::int64_t ends = end_parameter_bytes(program, rank);
    memory.parameters += ends;
    memory.gradients += ends;
    // A full step (a vocabulary) keeps fp32 states, and fp32 master weights below fp32.
    const bool mixed_precision = model.vocab > 0;
    const std::int64_t elements = memory.gradients / element_bytes(model);
    memory.optimizer = mixed_precision
                           ? elements * 4 * (optimizer_states_per_parameter + (element_bytes(model) < 4 ? 1 : 0))
                           : optimizer_states_per_parameter * memory.gradients;
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
