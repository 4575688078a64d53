#include "plait/executor/serial_baseline.hpp"

#include <algorithm>
#include <chrono>

#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>

#include "detail/gpt_ends.hpp"
#include "detail/transformer.hpp"
#include "train/optimizer.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {

struct SerialBaseline::Impl {
  detail::ModelContext context;
  int layers;
  double h;
  bool on_cuda;
  at::Tensor input, target;
  std::vector<std::vector<at::Tensor>> parameters;  // per block
  at::Tensor output, loss;
  // A full GPT step: its token ids, ends (word, position, final norm) and
  // the optimizer step at learning rate 0, as the Program's update op.
  at::Tensor tokens;
  std::vector<at::Tensor> ends;
  detail::Optimizer optimizer{training::OptimizerConfig{}};

  Impl(const schedule::ModelDesc& model, int layers_, const std::string& device)
      : context(model, device), layers(layers_), h(model.tstop / layers_), on_cuda(detail::is_cuda(device)) {
    at::NoGradGuard no_grad;
    input = detail::make_input(context);
    target = detail::make_target(context);
    for (int block = 0; block < layers; ++block) {
      parameters.push_back(detail::make_block_parameters(context, block, layers));
      for (auto& p : parameters.back()) p.requires_grad_(true);
    }
    if (model.vocab > 0) {
      tokens = detail::make_tokens(context);
      ends = detail::GptEnds(context, true, true).parameters();
    }
  }

  std::vector<at::Tensor> all_parameters() const {
    std::vector<at::Tensor> all = ends;
    for (const auto& block : parameters) all.insert(all.end(), block.begin(), block.end());
    return all;
  }

  void step() {
    for (auto& p : all_parameters()) p.mutable_grad().reset();
    {
      at::AutoGradMode enable_grad(true);
      at::Tensor x = tokens.defined() ? detail::embed_whole(ends[0], ends[1], tokens) : input;
      for (const auto& block : parameters) x = detail::block_step(context, block, x, h);
      loss = tokens.defined() ? detail::loss_whole(x, ends[2], ends[3], ends[0], tokens) : detail::loss_value(x, target);
      loss.backward();
      output = x.detach();
    }
    if (!tokens.defined()) return;
    std::vector<detail::ParameterSlot> slots;
    for (const auto& p : all_parameters()) slots.push_back({std::to_string(slots.size()), p, p.grad()});
    optimizer.step(slots, 0);
  }
};

SerialBaseline::SerialBaseline(const schedule::ModelDesc& model, int layers, const std::string& device) {
  check_runnable(model, device);
  if (layers < 1) throw Error("serial baseline", "layers must be at least 1");
  impl_ = std::make_unique<Impl>(model, layers, device);
}

SerialBaseline::~SerialBaseline() = default;

double SerialBaseline::run_step() {
  impl_->step();
  return impl_->loss.item<double>();
}

void SerialBaseline::run_step_async() { impl_->step(); }

void SerialBaseline::synchronize() {
  if (impl_->on_cuda) torch::cuda::synchronize();
}

double SerialBaseline::time_forward_cycle(double min_seconds) {
  constexpr int min_cycles = 3;
  at::NoGradGuard no_grad;
  const auto run_cycle = [this] {
    const auto begin = std::chrono::steady_clock::now();
    for (const auto& block : impl_->parameters) detail::block_step(impl_->context, block, impl_->input, impl_->h);
    synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() / impl_->layers;
  };
  run_cycle();  // warm
  std::vector<double> seconds;
  double spent = 0;
  while (seconds.size() < min_cycles || spent < min_seconds) {
    seconds.push_back(run_cycle());
    spent += seconds.back() * impl_->layers;
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

int SerialBaseline::layers() const { return impl_->layers; }

std::vector<double> SerialBaseline::output() const {
  if (!impl_->output.defined()) throw Error("serial baseline", "no step has run yet");
  return detail::to_doubles(impl_->output);
}

std::vector<double> SerialBaseline::gradient(int block) const {
  const auto& ends = impl_->ends;
  const bool end = !ends.empty() && (block == embedding_gradient_id || block == final_norm_gradient_id);
  if (!end && (block < 0 || block >= impl_->layers))
    throw Error("serial baseline", "no block " + std::to_string(block));
  const std::vector<at::Tensor> tensors = !end ? impl_->parameters[std::size_t(block)]
                                          : block == embedding_gradient_id ? std::vector<at::Tensor>{ends[0], ends[1]}
                                                                           : std::vector<at::Tensor>{ends[2], ends[3]};
  std::vector<at::Tensor> flat;
  for (const auto& p : tensors) {
    if (!p.grad().defined()) throw Error("serial baseline", "no step has run yet");
    flat.push_back(p.grad().reshape({-1}));
  }
  return detail::to_doubles(at::cat(flat));
}

}  // namespace plait::executor
