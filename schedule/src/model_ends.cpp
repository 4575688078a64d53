// The ends of a full GPT step (model.vocab > 0) as ranks hold them, and the
// parameter tensors a gradient all-reduce sums one by one (Op::per_tensor).
//
// The embedding (word and position tables) sits with the input op and the
// head (final LayerNorm, the output layer tied to the word table) with the
// loss op: on the ranks of the first and last block, or both on the first
// rank of a replica (Program::ends_on_first_rank, TorchBraid's layout). The
// buffer blocks (ModelDesc::buffer_blocks) go with them: after the embedding
// and before the head.
#include <algorithm>

#include "plait/schedule/memory.hpp"

namespace plait::schedule {
namespace {

std::int64_t element_bytes(const ModelDesc& model) { return state_bytes(model) / std::max<std::int64_t>(state_elements(model), 1); }

// One block's parameter tensors on one tensor-parallel rank: 1 / T of the
// split matrices and their column-split biases; LayerNorms and the row-split
// layers' biases whole.
std::vector<std::int64_t> block_tensors(const ModelDesc& model) {
  if (model.kind == "mlp") return {std::int64_t{model.width} * model.width, model.width};
  if (model.kind != "transformer") return {1};
  const std::int64_t d = model.d_model, hidden = std::int64_t{model.mlp_ratio} * d;
  const std::int64_t tp = std::max(model.tensor_parallel, 1);
  return {d,          d,                                 // LayerNorm 1
          3 * d * d / tp, 3 * d / tp,                    // q, k, v
          d * d / tp, d,                                 // output projection
          d,          d,                                 // LayerNorm 2
          hidden * d / tp, hidden / tp,                  // MLP up
          d * hidden / tp, d};                           // MLP down
}

// The ends' tensors rank `rank` holds: embedding tables, buffer blocks, head.
std::vector<std::int64_t> end_tensors(const Program& program, int rank) {
  const ModelDesc& model = program.model;
  if (model.vocab <= 0) return {};
  const EndsHeld held = ends_held(program, rank);
  const std::int64_t d = model.d_model;
  const std::int64_t word = std::int64_t{model.vocab} / std::max(model.tensor_parallel, 1) * d;
  const std::vector<std::int64_t> block = block_tensors(model);
  std::vector<std::int64_t> tensors;
  const auto add_buffer_blocks = [&] {
    for (int b = 0; b < model.buffer_blocks; ++b) tensors.insert(tensors.end(), block.begin(), block.end());
  };
  if (held.first) {
    tensors.insert(tensors.end(), {word, std::int64_t{model.seq} * d});
    add_buffer_blocks();
  }
  if (held.last) {
    add_buffer_blocks();
    if (!held.first) tensors.push_back(word);  // the tied output layer's copy
    tensors.insert(tensors.end(), {d, d});
  }
  return tensors;
}

std::int64_t sum(const std::vector<std::int64_t>& values) {
  std::int64_t total = 0;
  for (const std::int64_t value : values) total += value;
  return total;
}

}  // namespace

std::int64_t block_parameter_count(const ModelDesc& model) { return sum(block_tensors(model)); }

EndsHeld ends_held(const Program& program, int rank) {
  EndsHeld held;
  for (const BlockRange& chunk : owned_blocks(program, rank)) {
    held.first = held.first || chunk.first == 0;
    held.last = held.last || chunk.end == program.layers;
  }
  if (program.ends_on_first_rank) held.last = held.first;
  return held;
}

std::int64_t end_parameter_bytes(const Program& program, int rank) {
  return sum(end_tensors(program, rank)) * element_bytes(program.model);
}

std::int64_t held_buffer_blocks(const Program& program, int rank) {
  if (program.model.vocab <= 0) return 0;
  const EndsHeld held = ends_held(program, rank);
  return std::int64_t{program.model.buffer_blocks} * ((held.first ? 1 : 0) + (held.last ? 1 : 0));
}

std::int64_t gradient_element_bytes(const ModelDesc& model, const Op& op) {
  return op.per_tensor ? 4 : element_bytes(model);
}

bool carries_end_gradients(const ModelDesc& model, const Op& op, std::int64_t shards) {
  const std::int64_t elements = std::int64_t{op.span} * block_parameter_count(model);
  const std::int64_t padded = (elements + shards - 1) / shards * shards;
  return op.bytes > padded * gradient_element_bytes(model, op);
}

std::int64_t end_gradient_bytes(const Program& program, int rank, const Op& op) {
  return sum(end_tensors(program, rank)) * gradient_element_bytes(program.model, op);
}

std::vector<std::int64_t> gradient_tensor_elements(const Program& program, int rank, const Op& op) {
  const std::vector<std::int64_t> block = block_tensors(program.model);
  std::vector<std::int64_t> tensors;
  for (std::int32_t b = 0; b < op.span; ++b) tensors.insert(tensors.end(), block.begin(), block.end());
  if (carries_end_gradients(program.model, op, program.zero_stage > 0 ? program.replicas : 1)) {
    const std::vector<std::int64_t> ends = end_tensors(program, rank);
    tensors.insert(tensors.end(), ends.begin(), ends.end());
  }
  return tensors;
}

}  // namespace plait::schedule
