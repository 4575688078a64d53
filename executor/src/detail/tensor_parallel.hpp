// Megatron's tensor parallelism on one block: which slice of every parameter
// a shard holds, and the two group operations its block step needs. A shard
// computes heads / T of the attention and 1 / T of the MLP: the QKV and first
// MLP projections split by rows of their weights (output columns), the
// attention output and second MLP projections by columns (input rows); the
// LayerNorms and the biases added after a sum are whole on every shard.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "plait/executor/world.hpp"

namespace plait::executor::detail {

// Shard `shard` of `count` of a block's parameters (ParameterIndex order).
std::vector<at::Tensor> shard_block_parameters(const std::vector<at::Tensor>& whole, int shard, int count);

// A shard's parameter-shaped tensors (its gradients) placed into the whole
// block's layout, zeros elsewhere; the whole-block tensors (LayerNorms, the
// biases added after a sum) only on shard 0, so that the shards' layouts add
// up to the whole block's.
std::vector<at::Tensor> unshard_block_tensors(const std::vector<at::Tensor>& shard_tensors,
                                              const std::vector<at::Tensor>& whole_shapes, int shard, int count);

// The sum over the group of every shard's partial output (forward); the
// gradient passes through unchanged (Megatron's g).
at::Tensor sum_over_group(const at::Tensor& partial, GroupSum& group);
// The identity (forward); the gradient is summed over the group, since every
// shard's part of the block read this input (Megatron's f).
at::Tensor enter_group(const at::Tensor& input, GroupSum& group);

// Megatron's sequence parallelism (model.sequence_parallel): shard `shard`
// of the group's T holds positions [shard S / T, (shard + 1) S / T) of the
// sequence (dim 1 of [batch, seq, d]).
// That chunk of a tensor, as a view (outside autograd: masks and the like).
at::Tensor sequence_chunk_of(const at::Tensor& whole, int shard, int count);
// The chunk of the block's whole input (identical on every shard); backward:
// the chunks' gradients all-gathered, the whole input gradient on every shard.
at::Tensor sequence_chunk(const at::Tensor& whole, GroupSum& group, int shard);
// All-gather of the chunks before a column-parallel matmul; backward:
// reduce-scatter (the group's sum, this shard's chunk of it).
at::Tensor gather_sequence(const at::Tensor& chunk, GroupSum& group, int shard);
// Reduce-scatter of a row-parallel matmul's partial sums (the group's sum,
// this shard's chunk); backward: all-gather.
at::Tensor reduce_scatter_sequence(const at::Tensor& partial, GroupSum& group, int shard);
// All-gather of the block's output chunks into the whole state; backward:
// this shard's chunk of the (identical) whole gradient, no communication.
at::Tensor gather_state(const at::Tensor& chunk, GroupSum& group, int shard);

// The group's sum of a tensor, outside autograd.
at::Tensor summed_over_group(const at::Tensor& tensor, GroupSum& group);

}  // namespace plait::executor::detail
