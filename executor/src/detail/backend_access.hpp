// What the trainer reaches inside a TorchBackend: the network input (the
// embedding's output), the loss (the model's head), dropout masks and the
// parameter and gradient tensors. Executor-private: it includes ATen.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "plait/executor/torch_backend.hpp"

namespace plait::executor::detail {

struct BackendAccess {
  // Called by the Program's loss op with the ODE's output u_N; returns dJ/du_N.
  using LossFunction = std::function<at::Tensor(const at::Tensor& output)>;

  static void set_input(TorchBackend& backend, const at::Tensor& input);
  static void set_loss(TorchBackend& backend, LossFunction loss);
  // Masks are drawn per block from `seed`, once, until the seed changes.
  static void set_dropout(TorchBackend& backend, double p, std::uint64_t seed);
  static std::vector<at::Tensor>& parameters(TorchBackend& backend, int block);
  // Accumulated by the last run; nullptr where the block got none.
  static std::vector<at::Tensor>* gradients(TorchBackend& backend, int block);
  static const at::Tensor* state(const TorchBackend& backend, const schedule::Buffer& buffer);
};

}  // namespace plait::executor::detail
