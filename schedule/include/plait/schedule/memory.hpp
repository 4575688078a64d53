// Memory a rank needs to run its part of a Program: an estimate from the
// model's shape and the ops, the same for every backend. Used by `plait inspect`,
// `plait simulate` (does it fit the device?) and the builder's memory budget
// (keep a forward step's graph or recompute it in the adjoint).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plait/schedule/program.hpp"

namespace plait::schedule {

struct RankMemory {
  // The rank's blocks' weights (with ZeRO stage 3, their 1 / replicas shards)
  // and its ends' (whole).
  std::int64_t parameters = 0;
  std::int64_t gradients = 0;    // the trained parameters' gradients (ZeRO stage >= 2: 1 / replicas of them)
  // Optimizer state, when training (e.g. AdamW: 2x parameters); a full
  // training step (a vocabulary) in fp16 / bf16 also keeps fp32 master weights.
  // ZeRO stage >= 1: of the rank's 1 / replicas shard of the parameters.
  std::int64_t optimizer = 0;
  // The most state buffers alive at once (first write to last read), one state
  // each; with sequence parallelism 1 / T of a state (the rank's part of the sequence).
  std::int64_t states = 0;
  std::int64_t kept_graphs = 0;  // activations of forward steps kept for the adjoint
  std::int64_t recompute = 0;    // one recomputing adjoint step's transient graph
  std::int64_t messages = 0;     // sent bytes not yet received, at most (peak_held_message_bytes)
  // ZeRO stage 3: the whole parameters of the blocks all-gathered at once, a
  // transient: one block, two when the gathers prefetch (the next block's
  // arrives during the step on the previous one).
  std::int64_t gathered = 0;

  std::int64_t total() const {
    return parameters + gradients + optimizer + states + kept_graphs + recompute + messages + gathered;
  }
};

// Parameters of one block (weights and biases of attention, MLP, two
// LayerNorms) on one tensor-parallel rank: 1 / T of the split matrices and
// their column-split biases; LayerNorms and the row-split layers' biases whole.
std::int64_t block_parameter_count(const ModelDesc& model);
// Bytes (model dtype) of the embedding and output-layer parameters rank `rank`
// holds (ends_held): with a vocabulary, the word embedding's 1 / T of the
// vocabulary and the position embedding with the input; the final LayerNorm
// and the output layer (the word embedding's shard again, tied) with the
// loss; the two once when one rank holds both; the buffer blocks of each end
// it holds. 0 without a vocabulary (model_ends.cpp).
std::int64_t end_parameter_bytes(const Program& program, int rank);
// Buffer blocks (ModelDesc::buffer_blocks) rank `rank` runs: those of each end it holds.
std::int64_t held_buffer_blocks(const Program& program, int rank);
// Bytes a gradient element takes in a grad_allreduce: 4 when per_tensor
// (TorchBraid sums fp32 .grad), else the model's dtype.
std::int64_t gradient_element_bytes(const ModelDesc& model, const Op& op);
// Whether a grad_allreduce also sums the rank's ends' gradients (its bytes
// are more than its blocks'), and those gradients' bytes at its element size.
// `shards`: a sharded op's replicas (its blocks' part padded to a multiple of them), else 1.
bool carries_end_gradients(const ModelDesc& model, const Op& op, std::int64_t shards = 1);
std::int64_t end_gradient_bytes(const Program& program, int rank, const Op& op);
// The parameter tensors (elements each) a grad_allreduce of `rank` sums, in
// order: each of its blocks' tensors, then the ends' when it carries them.
std::vector<std::int64_t> gradient_tensor_elements(const Program& program, int rank, const Op& op);
// Bytes of the gradients of `blocks` blocks, one element per parameter in the
// model's dtype: what a grad_allreduce moves.
std::int64_t gradient_bytes(const ModelDesc& model, std::int32_t blocks);
// Bytes autograd saves for one transformer block step (inputs of every matmul,
// norm and nonlinearity, the attention probabilities); 0 for the test problems.
// A full GPT step (vocab > 0) in fp16 / bf16: Korthikanti et al. 2022's layer,
// s b h (10 + 24 / t) + 5 a s^2 b / t, with sequence parallelism (the 10 over t
// too) and selective recompute (no 5 a s^2 b / t); the block stack: the
// executor's torch block (memory.cpp).
std::int64_t graph_bytes(const ModelDesc& model);

// States a parameter of an optimizer keeps: none 0, sgd-momentum 1, adamw 2;
// throws plait::Error naming the optimizers for another.
int optimizer_states_per_parameter(const std::string& optimizer);

// `optimizer_states_per_parameter`: 0 for a plain step, 2 for AdamW.
// first_replica_only: replica 0's ranks only (ranks_per_replica entries), for
// a Program whose replicas run the same ops (every builder's): what each
// replica's ranks hold, without dry-running every replica.
std::vector<RankMemory> estimate_memory(const Program& program, int optimizer_states_per_parameter = 0,
                                        bool first_replica_only = false);

std::string format_bytes(double bytes);  // "1.5 GiB"

}  // namespace plait::schedule
