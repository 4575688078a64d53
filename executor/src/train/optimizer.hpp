// AdamW (decoupled weight decay) and SGD with momentum over named tensors;
// the state is named tensors too, so a checkpoint holds it exactly.
// Weight decay applies to tensors of two or more dimensions (not to biases or norms).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "plait/training/config.hpp"

namespace plait::executor::detail {

struct ParameterSlot {
  std::string name;
  at::Tensor parameter;  // updated in place
  at::Tensor gradient;   // undefined: no update this step
};

class Optimizer {
 public:
  explicit Optimizer(const training::OptimizerConfig& config) : config_(config) {}
  void step(const std::vector<ParameterSlot>& slots, double lr);
  // State tensors by name ("<kind>.<parameter>") and the count of steps taken.
  std::map<std::string, at::Tensor>& state() { return state_; }
  std::int64_t steps_taken() const { return steps_; }
  void set_steps_taken(std::int64_t steps) { steps_ = steps; }
  // The state tensors a parameter has (names for checkpoints).
  std::vector<std::string> state_names(const std::string& parameter) const;

 private:
  at::Tensor& slot(const std::string& name, const at::Tensor& like);
  training::OptimizerConfig config_;
  std::map<std::string, at::Tensor> state_;
  std::int64_t steps_ = 0;
};

// Warmup (linear) then cosine decay to lr * min_lr_ratio at `steps`.
double learning_rate(const training::OptimizerConfig& config, int step, int steps);

}  // namespace plait::executor::detail
