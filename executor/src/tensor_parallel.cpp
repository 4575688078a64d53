#include "detail/tensor_parallel.hpp"

#include <cstdint>

#include <torch/csrc/autograd/custom_function.h>

#include "detail/transformer.hpp"

namespace plait::executor::detail {
namespace {

bool is_whole_on_every_shard(int index) {
  switch (index) {
    case ln1_weight: case ln1_bias: case ln2_weight: case ln2_bias: case out_bias: case fc2_bias: return true;
    default: return false;
  }
}

// The part of a whole-block tensor that shard `shard` of `count` holds, as a
// view of it (QKV as [3, d / T, ...]: its rows are q, k, v, each by heads).
at::Tensor shard_view(const at::Tensor& whole, int index, int shard, int count) {
  const auto part = [&](const at::Tensor& tensor, int64_t dim) {
    const int64_t size = tensor.size(dim) / count;
    return tensor.narrow(dim, shard * size, size);
  };
  switch (index) {
    case qkv_weight: return part(whole.view({3, whole.size(0) / 3, whole.size(1)}), 1);
    case qkv_bias: return part(whole.view({3, whole.size(0) / 3}), 1);
    case fc1_weight: case fc1_bias: return part(whole, 0);
    case out_weight: case fc2_weight: return part(whole, 1);
    default: return whole;
  }
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

GroupSum& group_of(AutogradContext* context) {
  return *reinterpret_cast<GroupSum*>(context->saved_data["group"].toInt());
}

struct SumOverGroup : torch::autograd::Function<SumOverGroup> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& partial, GroupSum* group) {
    return summed_over_group(partial, *group);
  }
  static variable_list backward(AutogradContext*, variable_list gradients) { return {gradients[0], at::Tensor()}; }
};

struct EnterGroup : torch::autograd::Function<EnterGroup> {
  static at::Tensor forward(AutogradContext* context, const at::Tensor& input, GroupSum* group) {
    context->saved_data["group"] = reinterpret_cast<std::int64_t>(group);
    return input.clone();
  }
  static variable_list backward(AutogradContext* context, variable_list gradients) {
    return {summed_over_group(gradients[0], group_of(context)), at::Tensor()};
  }
};

// Megatron's sequence parallelism over a GroupSum, which only sums: an
// all-gather is the sum of every shard's chunk zero-padded to the whole
// sequence, and a reduce-scatter the whole sum, of which a shard keeps its
// chunk. Exact (a value plus zeros is the value), but each one moves T times
// the bytes of a real all-gather / reduce-scatter (a whole tensor per member,
// not a chunk): this executor checks correctness on CPU, it does not time them.
at::Tensor gathered_sequence(const at::Tensor& chunk, GroupSum& group, int shard) {
  std::vector<int64_t> shape = chunk.sizes().vec();
  shape[1] *= group.size();
  at::Tensor padded = at::zeros(shape, chunk.options());
  sequence_chunk_of(padded, shard, group.size()).copy_(chunk);
  return summed_over_group(padded, group);
}

at::Tensor scattered_sequence(const at::Tensor& whole, GroupSum& group, int shard) {
  return sequence_chunk_of(summed_over_group(whole, group), shard, group.size()).contiguous();
}

void save_group(AutogradContext* context, GroupSum* group, int shard) {
  context->saved_data["group"] = reinterpret_cast<std::int64_t>(group);
  context->saved_data["shard"] = std::int64_t{shard};
}

int shard_of(AutogradContext* context) { return int(context->saved_data["shard"].toInt()); }

// The shard's chunk of the whole (identical) block input; the chunks'
// gradients are all-gathered, so every shard gets the whole input gradient.
struct SequenceChunk : torch::autograd::Function<SequenceChunk> {
  static at::Tensor forward(AutogradContext* context, const at::Tensor& whole, GroupSum* group, int shard) {
    save_group(context, group, shard);
    return sequence_chunk_of(whole, shard, group->size()).clone();
  }
  static variable_list backward(AutogradContext* context, variable_list gradients) {
    return {gathered_sequence(gradients[0], group_of(context), shard_of(context)), at::Tensor(), at::Tensor()};
  }
};

// All-gather along the sequence. Before a column-parallel matmul
// (`to_shards`), every shard's part of the block read the whole: the
// gradient is reduce-scattered (Megatron's g-bar). After the block
// (`!to_shards`), the incoming gradient is the whole state's, identical on
// every shard: each keeps its chunk.
struct GatherSequence : torch::autograd::Function<GatherSequence> {
  static at::Tensor forward(AutogradContext* context, const at::Tensor& chunk, GroupSum* group, int shard,
                            bool to_shards) {
    save_group(context, group, shard);
    context->saved_data["to_shards"] = to_shards;
    return gathered_sequence(chunk, *group, shard);
  }
  static variable_list backward(AutogradContext* context, variable_list gradients) {
    GroupSum& group = group_of(context);
    const int shard = shard_of(context);
    const at::Tensor gradient = context->saved_data["to_shards"].toBool()
                                    ? scattered_sequence(gradients[0], group, shard)
                                    : sequence_chunk_of(gradients[0], shard, group.size()).contiguous();
    return {gradient, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// Reduce-scatter along the sequence of a row-parallel matmul's partial sums;
// the chunks' gradients are all-gathered (Megatron's g).
struct ReduceScatterSequence : torch::autograd::Function<ReduceScatterSequence> {
  static at::Tensor forward(AutogradContext* context, const at::Tensor& partial, GroupSum* group, int shard) {
    save_group(context, group, shard);
    return scattered_sequence(partial, *group, shard);
  }
  static variable_list backward(AutogradContext* context, variable_list gradients) {
    return {gathered_sequence(gradients[0], group_of(context), shard_of(context)), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor sequence_chunk_of(const at::Tensor& whole, int shard, int count) {
  const int64_t size = whole.size(1) / count;
  return whole.narrow(1, shard * size, size);
}

at::Tensor sequence_chunk(const at::Tensor& whole, GroupSum& group, int shard) {
  return SequenceChunk::apply(whole, &group, shard);
}

at::Tensor gather_sequence(const at::Tensor& chunk, GroupSum& group, int shard) {
  return GatherSequence::apply(chunk, &group, shard, true);
}

at::Tensor reduce_scatter_sequence(const at::Tensor& partial, GroupSum& group, int shard) {
  return ReduceScatterSequence::apply(partial, &group, shard);
}

at::Tensor gather_state(const at::Tensor& chunk, GroupSum& group, int shard) {
  return GatherSequence::apply(chunk, &group, shard, false);
}

// fp64 stays fp64; other dtypes add in fp32.
at::Tensor summed_over_group(const at::Tensor& tensor, GroupSum& group) {
  const auto dtype = tensor.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor host = tensor.detach().to(at::kCPU, dtype).contiguous().clone();
  if (host.scalar_type() == at::kDouble) group.sum(std::span<double>(host.data_ptr<double>(), std::size_t(host.numel())));
  else group.sum(std::span<float>(host.data_ptr<float>(), std::size_t(host.numel())));
  return host.to(tensor.options());
}

std::vector<at::Tensor> shard_block_parameters(const std::vector<at::Tensor>& whole, int shard, int count) {
  std::vector<at::Tensor> shard_parameters;
  for (int index = 0; index < int(whole.size()); ++index) {
    if (is_whole_on_every_shard(index)) {
      shard_parameters.push_back(whole[std::size_t(index)]);
      continue;
    }
    const at::Tensor view = shard_view(whole[std::size_t(index)], index, shard, count);
    // QKV's q, k, v parts side by side again ([3 d / T, d]), as the block step reads them.
    const bool qkv = index == qkv_weight || index == qkv_bias;
    shard_parameters.push_back(qkv ? view.flatten(0, 1).clone() : view.clone());
  }
  return shard_parameters;
}

std::vector<at::Tensor> unshard_block_tensors(const std::vector<at::Tensor>& shard_tensors,
                                              const std::vector<at::Tensor>& whole_shapes, int shard, int count) {
  std::vector<at::Tensor> whole;
  for (int index = 0; index < int(shard_tensors.size()); ++index) {
    whole.push_back(at::zeros_like(whole_shapes[std::size_t(index)]));
    if (is_whole_on_every_shard(index)) {
      if (shard == 0) whole.back().copy_(shard_tensors[std::size_t(index)]);
      continue;
    }
    at::Tensor view = shard_view(whole.back(), index, shard, count);
    view.copy_(shard_tensors[std::size_t(index)].reshape(view.sizes()));
  }
  return whole;
}

at::Tensor sum_over_group(const at::Tensor& partial, GroupSum& group) { return SumOverGroup::apply(partial, &group); }

at::Tensor enter_group(const at::Tensor& input, GroupSum& group) { return EnterGroup::apply(input, &group); }

}  // namespace plait::executor::detail
