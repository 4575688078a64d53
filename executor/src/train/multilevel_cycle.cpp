// The multilevel cycle (MG/OPT in depth). Level l's ODE block g stands for
// the blocks g*cf .. g*cf+cf-1 of level l-1 (same rank: the constructor
// checks the partitions); training::block_transfer says which of them it is
// restricted from and prolonged to (injection, average, even, odd,
// alternate), level_transfer.cpp moves the tensors. Gradients restrict by the
// transpose of the prolongation, so that with the correction the coarse
// objective
//   psi_l(y) = f_l(y) + <v_l, y - y_l0> + (f_0(x_0) - f_l(y_l0)),
//   v_l = R grad psi_{l-1}(x) - grad f_l(y_l0),
// has the finest loss's value and its restricted gradient at the restricted
// parameters y_l0 (first-order coherence on the cycle's batch). The shared
// parameters (embedding, buffer blocks, head) are the same tensors at every
// level: their restriction and prolongation are the identity.
#include <cmath>
#include <limits>

#include "../detail/backend_access.hpp"
#include "trainer.hpp"

namespace plait::executor::detail {

namespace {

std::vector<at::Tensor> parameters_of(const std::vector<ParameterSlot>& slots) {
  std::vector<at::Tensor> out;
  for (const auto& slot : slots) out.push_back(slot.parameter);
  return out;
}

std::vector<at::Tensor> clones(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.defined() ? t.detach().clone() : at::Tensor());
  return out;
}

// now - start, slot by slot (undefined where either is).
std::vector<at::Tensor> changes_since(const std::vector<at::Tensor>& now, const std::vector<at::Tensor>& start) {
  std::vector<at::Tensor> out;
  for (std::size_t s = 0; s < now.size(); ++s)
    out.push_back(now[s].defined() && start[s].defined() ? now[s] - start[s] : at::Tensor());
  return out;
}

double dot(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double sum = 0;
  for (std::size_t s = 0; s < a.size() && s < b.size(); ++s)
    if (a[s].defined() && b[s].defined()) sum += (a[s].to(at::kDouble) * b[s].to(at::kDouble)).sum().item<double>();
  return sum;
}

}  // namespace

LevelTransfer Trainer::transfer_to(int coarse, int cycle) {
  const int rank = world_.rank(), cf = config_.solver.multilevel.cf;
  const Level &fine = levels_[coarse - 1], &level = levels_[coarse];
  return LevelTransfer(training::block_transfer(config_.solver.multilevel, cycle), cf, parameter_count,
                       fine.partition[rank], level.partition[rank], level.partition[rank + 1] - level.partition[rank]);
}

std::vector<std::vector<at::Tensor>> Trainer::optimizer_states(Level& level) {
  const auto parameters = slots(level);
  std::vector<std::vector<at::Tensor>> states;
  for (const auto& slot : parameters) {
    const auto names = level.optimizer->state_names(slot.name);
    states.resize(names.size());
    for (std::size_t k = 0; k < names.size(); ++k) {
      auto found = level.optimizer->state().find(names[k]);
      states[k].push_back(found != level.optimizer->state().end() ? found->second : at::zeros_like(slot.parameter));
    }
  }
  return states;
}

void Trainer::set_optimizer_states(Level& level, const std::vector<std::vector<at::Tensor>>& states) {
  const auto parameters = slots(level);
  for (std::size_t s = 0; s < parameters.size(); ++s) {
    const auto names = level.optimizer->state_names(parameters[s].name);
    for (std::size_t k = 0; k < names.size(); ++k)
      if (states[k][s].defined()) level.optimizer->state()[names[k]] = states[k][s];
  }
}

void Trainer::reset_optimizer(Level& level) {
  level.optimizer->state().clear();
  level.optimizer->set_steps_taken(0);
}

double Trainer::begin_cycle(int step, const Batch& batch) {
  const auto& ml = config_.solver.multilevel;
  const int cycle = step / training::cycle_steps(config_);
  const bool correct = ml.correction && ml.coarse_steps > 0;
  // --check-correction compares with the restricted fine gradient, corrected or not.
  const bool restrict_gradient = correct || (overrides_.check_correction && ml.coarse_steps > 0);
  cycle_batch_ = batch;
  finest_loss_ = std::numeric_limits<double>::quiet_NaN();
  double flops = 0;
  std::vector<at::Tensor> restricted;  // of the level above, aligned with its slots
  if (restrict_gradient) {
    const Outcome fine = run_program(levels_[0], program_for(levels_[0], settings_), batch, true, step);
    flops += fine.flops + outside_flops_;
    finest_loss_ = fine.loss;
    restricted = gradient_snapshot(levels_[0]);
  }
  if (ml.line_search) {  // the loss the prolonged change must not make worse, without dropout
    if (restrict_gradient && config_.model.dropout == 0) line_search_reference_ = finest_loss_;
    else flops += forward_loss(batch, step, line_search_reference_);
  }
  at::NoGradGuard no_grad;
  for (std::size_t l = 1; l < levels_.size(); ++l) {
    Level &fine = levels_[l - 1], &coarse = levels_[l];
    coarse.transfer = std::make_unique<LevelTransfer>(transfer_to(int(l), cycle));
    auto coarse_slots = slots(coarse);
    const auto values = coarse.transfer->restrict_values(parameters_of(slots(fine)), false);
    for (std::size_t s = 0; s < coarse_slots.size(); ++s)
      if (values[s].defined()) coarse_slots[s].parameter.copy_(values[s]);
    coarse.start = clones(parameters_of(coarse_slots));
    if (ml.momentum == "reset") reset_optimizer(coarse);
    if (ml.momentum == "restrict") {
      auto states = optimizer_states(fine);
      for (auto& state : states) state = coarse.transfer->restrict_values(state, true);
      set_optimizer_states(coarse, states);
      coarse.optimizer->set_steps_taken(fine.optimizer->steps_taken());
      coarse.state_start = optimizer_states(coarse);
      for (auto& state : coarse.state_start) state = clones(state);
    }
    coarse.correction.clear();
    coarse.restricted_gradient = restrict_gradient ? coarse.transfer->restrict_gradient(restricted) : restricted;
    coarse.objective_offset = std::numeric_limits<double>::quiet_NaN();
    const bool coarsest = l + 1 == levels_.size();
    if (correct && !coarsest) {  // the coarsest level makes its correction from its first step's gradient
      at::AutoGradMode with_graph(true);
      const Outcome outcome = run_program(coarse, program_for(coarse, settings_), batch, true, step);
      flops += outcome.flops + outside_flops_;
      make_correction(coarse, gradient_snapshot(coarse), outcome.loss);
    }
    restricted = coarse.restricted_gradient;
  }
  return flops;
}

void Trainer::make_correction(Level& level, const std::vector<at::Tensor>& gradient, double loss) {
  level.correction.clear();
  for (std::size_t s = 0; s < gradient.size(); ++s)
    level.correction.push_back(level.restricted_gradient[s].defined() && gradient[s].defined()
                                   ? level.restricted_gradient[s] - gradient[s]
                                   : at::Tensor());
  level.objective_offset = finest_loss_ - loss;
}

double Trainer::forward_loss(const Batch& batch, int step, double& loss) {
  Level& fine = levels_[0];
  const Outcome outcome = run_program(fine, program_for(fine, settings_, true), batch, false, step);
  loss = outcome.loss;
  return outcome.flops + outside_flops_ / 3;  // the edges' GEMMs forward: a third of forward and backward
}

Trainer::Prolongation Trainer::prolong(int coarse_index, int step) {
  const auto& ml = config_.solver.multilevel;
  Level &coarse = levels_[coarse_index], &fine = levels_[coarse_index - 1];
  at::NoGradGuard no_grad;
  const std::vector<at::Tensor> change = changes_since(parameters_of(slots(coarse)), coarse.start);
  auto fine_parameters = parameters_of(slots(fine));
  coarse.transfer->prolong(change, fine_parameters, false);
  if (ml.momentum == "reset") reset_optimizer(fine);
  if (ml.momentum == "restrict") {
    auto coarse_states = optimizer_states(coarse), fine_states = optimizer_states(fine);
    for (std::size_t k = 0; k < coarse_states.size(); ++k)
      coarse.transfer->prolong(changes_since(coarse_states[k], coarse.state_start[k]), fine_states[k], true);
    set_optimizer_states(fine, fine_states);
    fine.optimizer->set_steps_taken(coarse.optimizer->steps_taken());
  }
  Prolongation out;
  if (!ml.line_search || coarse_index != 1) return out;
  // Backtrack the whole change (the shared parameters' too): step 1, 1/2, 1/4, else 0.
  for (int attempt = 0; attempt < 3; ++attempt) {
    double loss = 0;
    out.flops += forward_loss(cycle_batch_, step, loss);
    if (loss <= line_search_reference_) return out;
    const double next = attempt < 2 ? out.step / 2 : 0.0;
    std::vector<at::Tensor> back;
    for (const auto& c : change) back.push_back(c * (next - out.step));
    coarse.transfer->prolong(back, fine_parameters, true);
    out.step = next;
  }
  return out;
}

void Trainer::add_correction(Level& level, std::vector<ParameterSlot>& parameters, double loss) {
  if (level.index == 0 || !config_.solver.multilevel.correction || level.restricted_gradient.empty()) return;
  at::NoGradGuard no_grad;
  if (level.correction.empty()) {  // the coarsest level's first step: v = restricted gradient - this gradient
    std::vector<at::Tensor> gradient;
    for (const auto& slot : parameters) gradient.push_back(slot.gradient);
    make_correction(level, gradient, loss);
  }
  for (std::size_t s = 0; s < parameters.size(); ++s)
    if (parameters[s].gradient.defined() && level.correction[s].defined()) parameters[s].gradient.add_(level.correction[s]);
}

double Trainer::objective(Level& level, double loss) {
  const auto moved = changes_since(parameters_of(slots(level)), level.start);
  return loss + level.objective_offset + global_sum(dot(level.correction, moved));
}

// Runs the level's Program again on the batch (its parameters are still the
// restricted ones, its correction made from the step's first run) and
// compares grad psi_l with the restricted fine gradient and psi_l's value
// with the finest loss, relative to them, over all ranks. On the first coarse
// level it also checks that the restriction of gradients is the transpose of
// the prolongation: a central difference of the fine loss along P e,
// e = -eps R grad f, against <R grad f, e>. Leaves the fresh run's corrected
// gradients in place of the first run's and the fine parameters as they were.
CorrectionCheck Trainer::check_correction(Level& level, const Batch& batch, int step) {
  const Outcome outcome = run_program(level, program_for(level, settings_), batch, true, step);
  auto parameters = slots(level);
  add_correction(level, parameters, outcome.loss);
  double difference = 0, norm = 0;
  for (std::size_t s = 0; s < parameters.size(); ++s) {
    if (!level.restricted_gradient[s].defined() || !parameters[s].gradient.defined()) continue;
    const at::Tensor target = level.restricted_gradient[s].to(at::kDouble);
    difference += (parameters[s].gradient.to(at::kDouble) - target).pow(2).sum().item<double>();
    norm += target.pow(2).sum().item<double>();
  }
  const auto sums = world_.sum_all({difference, norm});
  CorrectionCheck check;
  check.gradient_error = sums[1] > 0 ? std::sqrt(sums[0] / sums[1]) : 0;
  if (config_.solver.multilevel.correction)
    check.value_error = std::abs(outcome.loss + level.objective_offset - finest_loss_) / std::abs(finest_loss_);
  if (level.index != 1) return check;
  at::NoGradGuard no_grad;
  const double predicted_slope = sums[1];  // <R g, R g>: the derivative along e / -eps
  const double eps = 1e-2 / predicted_slope;
  std::vector<at::Tensor> e;
  for (const auto& g : level.restricted_gradient) e.push_back(g.defined() ? g * (-eps) : at::Tensor());
  Level& fine = levels_[0];
  auto fine_parameters = parameters_of(slots(fine));
  const auto saved = clones(fine_parameters);
  const auto loss_at = [&](double sign) {
    std::vector<at::Tensor> move;
    for (const auto& t : e) move.push_back(t.defined() ? t * sign : at::Tensor());
    level.transfer->prolong(move, fine_parameters, true);
    double loss = 0;
    {
      at::AutoGradMode with_graph(true);  // the step's dropout masks, as the gradient saw them
      loss = run_program(fine, program_for(fine, settings_), batch, true, step).loss;
    }
    for (std::size_t s = 0; s < fine_parameters.size(); ++s) fine_parameters[s].copy_(saved[s]);
    return loss;
  };
  const double slope = (loss_at(1) - loss_at(-1)) / 2, predicted = -eps * predicted_slope;
  check.transfer_error = std::abs(slope - predicted) / std::abs(predicted);
  // The re-runs left the fine level's gradients: run the coarse level again for the step's own.
  run_program(level, program_for(level, settings_), batch, true, step);
  parameters = slots(level);
  add_correction(level, parameters, outcome.loss);
  return check;
}

}  // namespace plait::executor::detail
