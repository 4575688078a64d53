#include "plait/executor/serial_baseline.hpp"

#include <algorithm>
#include <chrono>

#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>

#include "detail/transformer.hpp"
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

  Impl(const schedule::ModelDesc& model, int layers_, const std::string& device)
      : context(model, device), layers(layers_), h(model.tstop / layers_), on_cuda(detail::is_cuda(device)) {
    at::NoGradGuard no_grad;
    input = detail::make_input(context);
    target = detail::make_target(context);
    for (int block = 0; block < layers; ++block) {
      parameters.push_back(detail::make_block_parameters(context, block, layers));
      for (auto& p : parameters.back()) p.requires_grad_(true);
    }
  }

  void step() {
    for (auto& block : parameters)
      for (auto& p : block) p.mutable_grad().reset();
    at::AutoGradMode enable_grad(true);
    at::Tensor x = input;
    for (const auto& block : parameters) x = detail::block_step(context, block, x, h);
    loss = detail::loss_value(x, target);
    loss.backward();
    output = x.detach();
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
  if (block < 0 || block >= impl_->layers)
    throw Error("serial baseline", "no block " + std::to_string(block));
  std::vector<at::Tensor> flat;
  for (const auto& p : impl_->parameters[block]) {
    if (!p.grad().defined()) throw Error("serial baseline", "no step has run yet");
    flat.push_back(p.grad().reshape({-1}));
  }
  return detail::to_doubles(at::cat(flat));
}

}  // namespace plait::executor
