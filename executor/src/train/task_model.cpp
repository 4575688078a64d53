#include "task_model.hpp"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

namespace plait::executor::detail {
namespace {

// Buffer blocks draw their weights from streams far from the ODE blocks'.
constexpr std::uint64_t buffer_seed_offset = 0x5eedb0ffULL;
constexpr std::uint64_t embedding_stream = 1ULL << 41;

at::Tensor normal(std::uint64_t seed, std::uint64_t stream, at::IntArrayRef shape, double std_dev,
                  const at::TensorOptions& options) {
  at::Generator generator = at::detail::createCPUGenerator(mix_seed(seed, stream));
  return (at::randn(shape, generator, at::TensorOptions().dtype(at::kDouble)) * std_dev).to(options);
}

schedule::ModelDesc buffer_model(const ModelContext& context) {
  schedule::ModelDesc model = context.model;
  model.seed = mix_seed(model.seed, buffer_seed_offset);
  return model;
}

std::string device_name(const at::TensorOptions& options) {
  const auto device = options.device();
  return device.is_cuda() ? "cuda:" + std::to_string(device.index()) : "cpu";
}

}  // namespace

TaskModel::TaskModel(const training::TrainConfig& config, int vocab, bool first_rank, bool last_rank,
                     const ModelContext& context)
    : config_(config), context_(buffer_model(context), device_name(context.options)) {
  const auto& m = config.model;
  const auto& options = context_.options;
  const std::uint64_t seed = context_.model.seed;
  const int depth = training::total_blocks(m);
  auto blocks = [&](int first, int count, std::vector<std::vector<at::Tensor>>& into) {
    for (int b = first; b < first + count; ++b) {
      auto made = make_block_parameters(context_, b, depth);
      for (std::size_t i = 0; i < made.size(); ++i)
        made[i] = add("buffer" + std::to_string(b) + "." + std::to_string(i), made[i]);
      into.push_back(made);
    }
  };
  std::uint64_t stream = embedding_stream;
  if (first_rank) {
    if (config.task == "char-lm") {
      token_embedding_ = add("token_embedding", normal(seed, stream++, {vocab, m.d_model}, 0.02, options));
    } else {
      const int pixels = m.patch * m.patch;
      patch_weight_ = add("patch_weight", normal(seed, stream++, {m.d_model, pixels}, 1.0 / std::sqrt(pixels), options));
      patch_bias_ = add("patch_bias", at::zeros({m.d_model}, options));
      class_token_ = add("class_token", normal(seed, stream++, {1, 1, m.d_model}, 0.02, options));
    }
    position_embedding_ = add("position_embedding", normal(seed, stream++, {m.seq, m.d_model}, 0.02, options));
    blocks(0, m.buffer_before, before_);
  }
  stream = embedding_stream + 16;
  if (last_rank) {
    blocks(m.buffer_before + m.ode_layers, m.buffer_after, after_);
    const int outputs = config.task == "char-lm" ? vocab : training::vit_classes;
    final_norm_weight_ = add("final_norm_weight", at::ones({m.d_model}, options));
    final_norm_bias_ = add("final_norm_bias", at::zeros({m.d_model}, options));
    head_weight_ = add("head_weight", normal(seed, stream++, {outputs, m.d_model}, 1.0 / std::sqrt(m.d_model), options));
    head_bias_ = add("head_bias", at::zeros({outputs}, options));
  }
}

at::Tensor& TaskModel::add(const std::string& name, at::Tensor tensor) {
  tensor = tensor.detach().requires_grad_(true);
  parameters_.push_back({name, tensor});
  return parameters_.back().tensor;
}

void TaskModel::set_dropout(double p, std::uint64_t seed) {
  masks_.clear();
  if (p <= 0) return;
  // Buffer block b uses the mask stream of block b, offset from the ODE blocks' streams.
  const auto& m = config_.model;
  for (int b = 0; b < training::total_blocks(m); ++b)
    if (b < m.buffer_before || b >= m.buffer_before + m.ode_layers)
      masks_[b] = make_dropout_masks(context_, p, mix_seed(seed, buffer_seed_offset), b);
}

at::Tensor TaskModel::buffer_blocks(at::Tensor x, int first, int count) {
  const auto& chosen = first == 0 ? before_ : after_;
  for (int i = 0; i < count; ++i) {
    const int block = first + i;
    x = block_step(context_, chosen[std::size_t(i)], x, 1.0, masks_.empty() ? nullptr : &masks_.at(block));
  }
  return x;
}

at::Tensor TaskModel::front(const at::Tensor& inputs) {
  const auto& m = config_.model;
  at::Tensor x;
  if (config_.task == "char-lm") {
    x = at::embedding(token_embedding_, inputs.to(context_.options.device()));
  } else {
    // [batch, 1, 28, 28] -> [batch, patches, patch * patch], row-major patches.
    const int64_t batch = inputs.size(0), side = training::vit_image_side / m.patch;
    const at::Tensor normalized = (inputs.to(context_.options) - 0.2860) / 0.3530;  // Fashion-MNIST's mean, std
    const at::Tensor patches = normalized.reshape({batch, side, m.patch, side, m.patch})
                                   .permute({0, 1, 3, 2, 4})
                                   .reshape({batch, side * side, m.patch * m.patch});
    const at::Tensor embedded = at::linear(patches, patch_weight_, patch_bias_);
    x = at::cat({class_token_.expand({batch, 1, m.d_model}), embedded}, 1);
  }
  x = x + position_embedding_;
  return buffer_blocks(x, 0, m.buffer_before);
}

TaskModel::Output TaskModel::back(const at::Tensor& state, const at::Tensor& targets) {
  const auto& m = config_.model;
  at::Tensor x = buffer_blocks(state, m.buffer_before + m.ode_layers, m.buffer_after);
  x = at::layer_norm(x, {m.d_model}, final_norm_weight_, final_norm_bias_, 1e-5);
  if (config_.task == "vit") x = x.select(1, 0);  // the class token
  at::Tensor logits = at::linear(x, head_weight_, head_bias_);
  logits = logits.reshape({-1, logits.size(-1)}).to(at::kFloat);
  const at::Tensor labels = targets.reshape({-1}).to(logits.device());
  Output out;
  out.loss = at::cross_entropy_loss(logits, labels);
  out.correct = logits.detach().argmax(-1).eq(labels).sum().item<std::int64_t>();
  out.count = labels.numel();
  return out;
}

}  // namespace plait::executor::detail
