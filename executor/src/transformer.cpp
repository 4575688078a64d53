#include "detail/transformer.hpp"

#include <cmath>
#include <cstdlib>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>

#include "detail/tensor_parallel.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor::detail {
// splitmix64: decorrelates (seed, stream) pairs so that neighbouring blocks
// do not get shifted copies of one random stream.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + stream + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

namespace {

constexpr std::uint64_t input_stream = first_model_stream;
constexpr std::uint64_t target_stream = first_model_stream + 1;

at::Tensor seeded_uniform(std::uint64_t seed, std::uint64_t stream, at::IntArrayRef shape, double bound,
                          const at::TensorOptions& options) {
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(seed, stream));
  at::Tensor values = at::rand(shape, generator, at::TensorOptions().dtype(at::kDouble));
  return ((values * 2 - 1) * bound).to(options);
}

}  // namespace

at::Tensor seeded_normal(std::uint64_t seed, std::uint64_t stream, at::IntArrayRef shape,
                         double std_dev, const at::TensorOptions& options) {
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(seed, stream));
  at::Tensor values = at::randn(shape, generator, at::TensorOptions().dtype(at::kDouble));
  return (values * std_dev).to(options);
}

at::ScalarType scalar_type_of(const std::string& dtype) {
  if (dtype == "fp32") return at::kFloat;
  if (dtype == "fp64") return at::kDouble;
  if (dtype == "bf16") return at::kBFloat16;
  if (dtype == "fp16") return at::kHalf;
  throw Error("model.dtype", "unsupported dtype '" + dtype + "' (expected fp32, fp64, bf16 or fp16)");
}

bool is_cuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

// The launcher's node-local rank, so that ranks sharing a node use different GPUs.
int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

at::Device device_of(const std::string& device) {
  if (device == "cpu") return at::Device(at::kCPU);
  if (device == "cuda") {
    const int count = int(torch::cuda::device_count());
    return at::Device(at::kCUDA, at::DeviceIndex(count > 0 ? local_rank() % count : 0));
  }
  if (is_cuda(device) && device.size() > 5 && device[4] == ':') {
    const std::string index = device.substr(5);
    if (index.find_first_not_of("0123456789") == std::string::npos && index.size() < 4)
      return at::Device(at::kCUDA, at::DeviceIndex(std::stoi(index)));
  }
  throw Error("--device", "unknown device '" + device + "' (expected cpu, cuda or cuda:N)");
}

ModelContext::ModelContext(const schedule::ModelDesc& desc, const std::string& device)
    : model(desc),
      options(at::TensorOptions().dtype(scalar_type_of(desc.dtype)).device(device_of(device))) {
  if (model.causal) {
    const double inf = std::numeric_limits<double>::infinity();
    causal_mask = at::full({model.seq, model.seq}, -inf, at::TensorOptions().dtype(at::kDouble))
                      .triu(1)
                      .to(options);
  }
}

std::vector<int64_t> ModelContext::state_shape() const {
  return {model.batch, model.seq, model.d_model};
}

std::vector<at::Tensor> make_block_parameters(const ModelContext& context, int block, int layers) {
  const auto& m = context.model;
  const int64_t d = m.d_model, hidden = int64_t(m.mlp_ratio) * m.d_model;
  // Stream `block` of the seed; each tensor has a sub-stream of its own so the
  // weights do not depend on the order in which tensors are created.
  const std::uint64_t seed = mix_seed(m.seed, std::uint64_t(block));
  int64_t sub = 0;
  std::vector<at::Tensor> p(parameter_count);
  p[ln1_weight] = at::ones({d}, context.options);
  p[ln1_bias] = at::zeros({d}, context.options);
  p[ln2_weight] = at::ones({d}, context.options);
  p[ln2_bias] = at::zeros({d}, context.options);
  if (m.init == "normal") {
    auto weight = [&](int64_t rows, int64_t cols) {
      return seeded_normal(seed, sub++, {rows, cols}, 1.0 / std::sqrt(double(cols)), context.options);
    };
    auto bias = [&](int64_t size) { return seeded_normal(seed, sub++, {size}, 0.02, context.options); };
    p[qkv_weight] = weight(3 * d, d);
    p[qkv_bias] = bias(3 * d);
    p[out_weight] = weight(d, d);
    p[out_bias] = bias(d);
    p[fc1_weight] = weight(hidden, d);
    p[fc1_bias] = bias(hidden);
    p[fc2_weight] = weight(d, hidden);
    p[fc2_bias] = bias(d);
    return p;
  }
  // PyTorch's TransformerEncoderLayer: MultiheadAttention's xavier-uniform
  // in-projection and zero biases, nn.Linear's U(+-1/sqrt(fan_in)) elsewhere.
  auto uniform = [&](at::IntArrayRef shape, double bound) {
    return seeded_uniform(seed, sub++, shape, bound, context.options);
  };
  p[qkv_weight] = uniform({3 * d, d}, std::sqrt(6.0 / double(d + 3 * d)));
  p[qkv_bias] = at::zeros({3 * d}, context.options);
  p[out_weight] = uniform({d, d}, 1.0 / std::sqrt(double(d)));
  p[out_bias] = at::zeros({d}, context.options);
  p[fc1_weight] = uniform({hidden, d}, 1.0 / std::sqrt(double(d)));
  p[fc1_bias] = uniform({hidden}, 1.0 / std::sqrt(double(d)));
  p[fc2_weight] = uniform({d, hidden}, 1.0 / std::sqrt(double(hidden)));
  p[fc2_bias] = uniform({d}, 1.0 / std::sqrt(double(hidden)));
  if (m.init == "depth-scaled") {
    if (layers < 1) throw Error("model.init", "depth-scaled needs the network's depth");
    const double scale = 1.0 / std::sqrt(std::log(2.0 * layers));
    p[qkv_weight].narrow(0, 2 * d, d).mul_(scale);  // the value projection
    for (int index : {int(out_weight), int(fc1_weight), int(fc2_weight)}) p[index].mul_(scale);
  }
  return p;
}

DropoutMasks make_dropout_masks(const ModelContext& context, double p, std::uint64_t seed, int block) {
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(seed, std::uint64_t(block)));
  const auto shape = context.state_shape();
  auto mask = [&] {
    const at::Tensor keep = at::rand(shape, generator, at::TensorOptions().dtype(at::kFloat)).ge(p);
    return (keep.to(at::kFloat) * (1.0 / (1.0 - p))).to(context.options);
  };
  DropoutMasks masks;
  masks.attention = mask();
  masks.mlp = mask();
  return masks;
}

namespace {

// Attention on the heads whose QKV rows `p` holds (all, or a tensor-parallel
// shard's), before the output projection: [batch, seq, d] -> [batch, seq, width].
at::Tensor attend(const ModelContext& context, const std::vector<at::Tensor>& p, const at::Tensor& normed) {
  const int64_t batch = normed.size(0), seq = normed.size(1), d = normed.size(2);
  const int64_t head_dim = d / context.model.heads;
  const int64_t width = p[qkv_weight].size(0) / 3;  // d, or d / T on a tensor-parallel shard
  const int64_t heads = width / head_dim;
  // [batch, seq, 3, heads, head_dim] -> [3, batch, heads, seq, head_dim]
  const at::Tensor qkv = at::linear(normed, p[qkv_weight], p[qkv_bias])
                             .view({batch, seq, 3, heads, head_dim})
                             .permute({2, 0, 3, 1, 4});
  const at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(head_dim)));
  if (context.causal_mask.defined()) scores = scores + context.causal_mask;
  return at::matmul(at::softmax(scores, -1), v).transpose(1, 2).reshape({batch, seq, width});
}

// Megatron's sequence parallelism: the LayerNorms, biases after the sums,
// dropouts and residual adds on this shard's chunk of the sequence; the
// normed chunks all-gathered before QKV and MLP-up, the partial sums of the
// attention output and MLP-down reduce-scattered; the output chunks
// all-gathered back into the whole state (the IR's state between blocks).
at::Tensor sequence_parallel_step(const ModelContext& context, const std::vector<at::Tensor>& p, const at::Tensor& x,
                                  double s, const DropoutMasks* dropout, GroupSum& group, int shard) {
  const int64_t d = x.size(2);
  // The LayerNorms and the biases after the sums are whole on every shard but
  // see only its chunk: their gradients are summed over the group (one
  // packed sum), so that every shard holds the whole block's, as without.
  const std::vector<at::Tensor> chunk_parameters{p[ln1_weight], p[ln1_bias], p[out_bias],
                                                 p[ln2_weight], p[ln2_bias], p[fc2_bias]};
  std::vector<int64_t> sizes;
  for (const at::Tensor& parameter : chunk_parameters) sizes.push_back(parameter.numel());
  const std::vector<at::Tensor> q = enter_group(at::cat(chunk_parameters), group).split_with_sizes(sizes);
  const at::Tensor &ln1_w = q[0], &ln1_b = q[1], &out_b = q[2], &ln2_w = q[3], &ln2_b = q[4], &fc2_b = q[5];
  // The serial step's masks (of the whole state), this shard's chunk of them.
  const auto masked = [&](const at::Tensor& branch, at::Tensor DropoutMasks::*mask) {
    return dropout ? branch * sequence_chunk_of(dropout->*mask, shard, group.size()) : branch;
  };

  const at::Tensor x_chunk = sequence_chunk(x, group, shard);
  const at::Tensor normed = gather_sequence(at::layer_norm(x_chunk, {d}, ln1_w, ln1_b, 1e-5), group, shard);
  const at::Tensor attention =
      reduce_scatter_sequence(at::linear(attend(context, p, normed), p[out_weight]), group, shard) + out_b;
  const at::Tensor y = at::add(x_chunk, masked(attention, &DropoutMasks::attention), s);

  const at::Tensor normed2 = gather_sequence(at::layer_norm(y, {d}, ln2_w, ln2_b, 1e-5), group, shard);
  const at::Tensor up = at::gelu(at::linear(normed2, p[fc1_weight], p[fc1_bias]));
  const at::Tensor mlp = reduce_scatter_sequence(at::linear(up, p[fc2_weight]), group, shard) + fc2_b;
  return gather_state(at::add(y, masked(mlp, &DropoutMasks::mlp), s), group, shard);
}

}  // namespace

at::Tensor block_step(const ModelContext& context, const std::vector<at::Tensor>& p,
                      const at::Tensor& x, double s, const DropoutMasks* dropout, GroupSum* group, int shard) {
  if (group && context.model.sequence_parallel) return sequence_parallel_step(context, p, x, s, dropout, *group, shard);
  const int64_t d = x.size(2);
  // A branch's input enters the group, and its output is the group's sum plus the bias.
  const auto enter = [&](const at::Tensor& input) { return group ? enter_group(input, *group) : input; };
  const auto project_out = [&](const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
    return group ? sum_over_group(at::linear(input, weight), *group) + bias : at::linear(input, weight, bias);
  };

  const at::Tensor normed = enter(at::layer_norm(x, {d}, p[ln1_weight], p[ln1_bias], 1e-5));
  at::Tensor attention = project_out(attend(context, p, normed), p[out_weight], p[out_bias]);
  if (dropout) attention = attention * dropout->attention;
  const at::Tensor y = at::add(x, attention, s);

  const at::Tensor normed2 = enter(at::layer_norm(y, {d}, p[ln2_weight], p[ln2_bias], 1e-5));
  at::Tensor mlp = project_out(at::gelu(at::linear(normed2, p[fc1_weight], p[fc1_bias])), p[fc2_weight], p[fc2_bias]);
  if (dropout) mlp = mlp * dropout->mlp;
  return at::add(y, mlp, s);
}

at::Tensor make_input(const ModelContext& context) {
  return seeded_normal(context.model.seed, input_stream, context.state_shape(), 1.0, context.options);
}

at::Tensor make_target(const ModelContext& context) {
  return seeded_normal(context.model.seed, target_stream, context.state_shape(), 1.0, context.options);
}

at::Tensor loss_value(const at::Tensor& state, const at::Tensor& target) {
  return 0.5 * (state - target).pow(2).mean();
}

at::Tensor loss_gradient(const at::Tensor& state, const at::Tensor& target) {
  return (state - target) / double(state.numel());
}

std::vector<double> to_doubles(const at::Tensor& tensor) {
  const at::Tensor host = tensor.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* data = host.data_ptr<double>();
  return std::vector<double>(data, data + host.numel());
}

}  // namespace plait::executor::detail
