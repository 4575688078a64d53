// The transformer model as an ODE right-hand side: parameters, the step
// Phi(u) = u + s*F(u) of one pre-LN block, input, target and loss. Private to
// executor/ (it includes ATen); the torch backend and the serial baseline
// share it, so both run exactly the same arithmetic on the same weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "plait/executor/world.hpp"
#include "plait/schedule/program.hpp"

namespace plait::executor::detail {

// Index of each tensor in a block's parameter list.
enum ParameterIndex : int {
  ln1_weight, ln1_bias, qkv_weight, qkv_bias, out_weight, out_bias,
  ln2_weight, ln2_bias, fc1_weight, fc1_bias, fc2_weight, fc2_bias,
  parameter_count
};

at::ScalarType scalar_type_of(const std::string& dtype);  // throws plait::Error
// "cpu", "cuda" (the GPU of this node-local rank: local rank mod GPU count) or "cuda:N".
at::Device device_of(const std::string& device);  // throws plait::Error
bool is_cuda(const std::string& device);

// Shape, dtype and device of everything a model computes.
struct ModelContext {
  schedule::ModelDesc model;
  at::TensorOptions options;  // dtype + device of states and parameters
  at::Tensor causal_mask;     // [seq, seq] additive mask (0 / -inf), or undefined

  ModelContext(const schedule::ModelDesc& model, const std::string& device);
  std::vector<int64_t> state_shape() const;
};

// Parameters of fine block `block`, drawn from (model.seed, block) on the CPU
// in fp64 and then cast, so every rank count and device gets the same weights.
// model.init picks the distribution; "depth-scaled" scales by the network's `layers`.
std::vector<at::Tensor> make_block_parameters(const ModelContext& context, int block, int layers);

// Dropout masks of one block's two residual branches, already scaled by
// 1/(1-p). Drawn once per optimizer step, so every MGRIT iteration and level
// solves the same problem.
struct DropoutMasks {
  at::Tensor attention, mlp;  // [batch, seq, d_model]
};
DropoutMasks make_dropout_masks(const ModelContext& context, double p, std::uint64_t seed, int block);

// Phi(u) = u + s*F(u): Y = X + s*Attn(LN1(X)), X' = Y + s*MLP(LN2(Y)).
// With a tensor-parallel group, `parameters` are this shard's
// (shard_block_parameters) and each branch's partial output is summed over it;
// with model.sequence_parallel too, the block's norms, biases after the sums,
// dropouts and residual adds run on shard `shard`'s chunk of the sequence
// (its place in the group). The state in and out is whole, as without.
at::Tensor block_step(const ModelContext& context, const std::vector<at::Tensor>& parameters,
                      const at::Tensor& state, double s, const DropoutMasks* dropout = nullptr,
                      GroupSum* group = nullptr, int shard = 0);

// splitmix64 of (seed, stream): independent seeds for blocks, batches, masks.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream);

// Random streams of model.seed: blocks use stream = block; the input, the
// target and a GPT step's ends use the streams from here on.
constexpr std::uint64_t first_model_stream = 1ULL << 40;

// N(0, std_dev^2) values of (seed, stream), drawn in fp64 on the CPU and cast.
at::Tensor seeded_normal(std::uint64_t seed, std::uint64_t stream, at::IntArrayRef shape, double std_dev,
                         const at::TensorOptions& options);

// The network input and the loss target [batch, seq, d_model], seeded by model.seed.
at::Tensor make_input(const ModelContext& context);
at::Tensor make_target(const ModelContext& context);

// J(u) = 0.5 * mean((u - target)^2); its gradient is (u - target) / numel.
at::Tensor loss_value(const at::Tensor& state, const at::Tensor& target);
at::Tensor loss_gradient(const at::Tensor& state, const at::Tensor& target);

// Host copy in fp64, flattened (for comparisons and the public API).
std::vector<double> to_doubles(const at::Tensor& tensor);

}  // namespace plait::executor::detail
