#include "optimizer.hpp"

#include <cmath>

#include <ATen/core/grad_mode.h>

namespace plait::executor::detail {

std::vector<std::string> Optimizer::state_names(const std::string& parameter) const {
  if (config_.kind == "adamw") return {"adam_m." + parameter, "adam_v." + parameter};
  return {"momentum." + parameter};
}

at::Tensor& Optimizer::slot(const std::string& name, const at::Tensor& like) {
  auto found = state_.find(name);
  if (found == state_.end()) found = state_.emplace(name, at::zeros_like(like)).first;
  return found->second;
}

void Optimizer::step(const std::vector<ParameterSlot>& slots, double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double wd = config_.weight_decay;
  for (const auto& s : slots) {
    if (!s.gradient.defined()) continue;
    at::Tensor p = s.parameter;
    const bool decays = p.dim() >= 2 && wd > 0;
    const auto names = state_names(s.name);
    if (config_.kind == "adamw") {
      at::Tensor& m = slot(names[0], p);
      at::Tensor& v = slot(names[1], p);
      m.mul_(config_.beta1).add_(s.gradient, 1 - config_.beta1);
      v.mul_(config_.beta2).addcmul_(s.gradient, s.gradient, 1 - config_.beta2);
      const double correction1 = 1 - std::pow(config_.beta1, double(steps_));
      const double correction2 = 1 - std::pow(config_.beta2, double(steps_));
      if (decays) p.mul_(1 - lr * wd);
      const at::Tensor denominator = (v / correction2).sqrt_().add_(config_.eps);
      p.addcdiv_(m, denominator, -lr / correction1);
    } else {
      at::Tensor& momentum = slot(names[0], p);
      at::Tensor g = decays ? s.gradient + wd * p : s.gradient;
      momentum.mul_(config_.momentum).add_(g);
      p.add_(momentum, -lr);
    }
  }
}

double learning_rate(const training::OptimizerConfig& config, int step, int steps) {
  if (config.warmup_steps > 0 && step < config.warmup_steps) return config.lr * double(step + 1) / config.warmup_steps;
  const double span = std::max(1, steps - config.warmup_steps);
  const double progress = std::min(1.0, double(step - config.warmup_steps) / span);
  const double floor = config.lr * config.min_lr_ratio;
  return floor + (config.lr - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace plait::executor::detail
