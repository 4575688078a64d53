// The multilevel cycle (MG/OPT in depth). Level l's ODE block g stands for
// the blocks g*cf .. g*cf+cf-1 of level l-1 (same rank: the constructor
// checks the partitions). Restriction sets it from them (the first one, or
// their mean); prolongation adds its change since the restriction to each of
// them. Gradients restrict by the transpose of that prolongation (the sum
// over the interval), so that to first order a coarse change e changes the
// fine loss by <restricted gradient, e>: with the correction, the coarse
// objective f_l(y) + <v_l, y>, v_l = restricted gradient - grad f_l(x_l),
// has exactly the restricted fine gradient at the restricted parameters.
// The shared parameters (embedding, buffer blocks, head) are the same tensors
// at every level: their restriction and prolongation are the identity.
#include <cmath>

#include "../detail/backend_access.hpp"
#include "trainer.hpp"

namespace plait::executor::detail {

namespace {

// Index in slots(level) of parameter `i` of the level's ODE block `block`.
std::size_t slot_index(const Level& level, int rank, int block, int i) {
  return std::size_t(block - level.partition[rank]) * parameter_count + std::size_t(i);
}

std::size_t ode_slots(const Level& level, int rank) {
  return std::size_t(level.partition[rank + 1] - level.partition[rank]) * parameter_count;
}

}  // namespace

double Trainer::begin_cycle(int step, const Batch& batch) {
  const int rank = world_.rank(), cf = config_.solver.multilevel.cf;
  const bool average = config_.solver.multilevel.restriction == "average";
  const bool correct = config_.solver.multilevel.correction && config_.solver.multilevel.coarse_steps > 0;
  // --check-correction compares with the restricted fine gradient, corrected or not.
  const bool restrict_gradient = correct || (overrides_.check_correction && config_.solver.multilevel.coarse_steps > 0);
  double flops = 0;
  std::vector<at::Tensor> restricted;  // of the level above, aligned with its slots
  if (restrict_gradient) {
    flops += run_program(levels_[0], program_for(levels_[0], settings_), batch, true, step).flops + outside_flops_;
    restricted = gradient_snapshot(levels_[0]);
  }
  at::NoGradGuard no_grad;
  for (std::size_t l = 1; l < levels_.size(); ++l) {
    Level &fine = levels_[l - 1], &coarse = levels_[l];
    const auto fine_slots = slots(fine);
    auto coarse_slots = slots(coarse);
    std::vector<at::Tensor> coarse_restricted(coarse_slots.size());
    for (int block = coarse.partition[rank]; block < coarse.partition[rank + 1]; ++block)
      for (int i = 0; i < parameter_count; ++i) {
        at::Tensor& target = coarse_slots[slot_index(coarse, rank, block, i)].parameter;
        at::Tensor sum_of_gradients;
        target.zero_();
        for (int j = 0; j < cf; ++j) {
          const std::size_t from = slot_index(fine, rank, block * cf + j, i);
          if (j == 0 || average) target.add_(fine_slots[from].parameter);
          if (restrict_gradient && restricted[from].defined())
            sum_of_gradients = sum_of_gradients.defined() ? sum_of_gradients + restricted[from] : restricted[from].clone();
        }
        if (average) target.div_(cf);
        coarse_restricted[slot_index(coarse, rank, block, i)] = sum_of_gradients;
      }
    const std::size_t shared = ode_slots(coarse, rank), fine_shared = ode_slots(fine, rank);
    for (std::size_t s = shared; s < coarse_slots.size() && restrict_gradient; ++s)
      coarse_restricted[s] = restricted[fine_shared + (s - shared)];
    coarse.start.clear();
    for (const auto& slot : coarse_slots) coarse.start.push_back(slot.parameter.clone());
    coarse.correction.clear();
    coarse.restricted_gradient = coarse_restricted;
    const bool coarsest = l + 1 == levels_.size();
    if (correct && !coarsest) {  // the coarsest level makes its correction from its first step's gradient
      at::AutoGradMode with_graph(true);
      flops += run_program(coarse, program_for(coarse, settings_), batch, true, step).flops + outside_flops_;
      const auto gradient = gradient_snapshot(coarse);
      for (std::size_t s = 0; s < gradient.size(); ++s)
        coarse.correction.push_back(coarse_restricted[s].defined() && gradient[s].defined()
                                        ? coarse_restricted[s] - gradient[s]
                                        : at::Tensor());
    }
    restricted = std::move(coarse_restricted);
  }
  return flops;
}

void Trainer::prolong(int coarse_index) {
  const int rank = world_.rank(), cf = config_.solver.multilevel.cf;
  Level &coarse = levels_[coarse_index], &fine = levels_[coarse_index - 1];
  at::NoGradGuard no_grad;
  const auto coarse_slots = slots(coarse);
  auto fine_slots = slots(fine);
  for (int block = coarse.partition[rank]; block < coarse.partition[rank + 1]; ++block)
    for (int i = 0; i < parameter_count; ++i) {
      const std::size_t s = slot_index(coarse, rank, block, i);
      const at::Tensor change = coarse_slots[s].parameter - coarse.start[s];
      for (int j = 0; j < cf; ++j) fine_slots[slot_index(fine, rank, block * cf + j, i)].parameter.add_(change);
    }
}

void Trainer::add_correction(Level& level, std::vector<ParameterSlot>& parameters) {
  if (level.index == 0 || !config_.solver.multilevel.correction || level.restricted_gradient.empty()) return;
  at::NoGradGuard no_grad;
  if (level.correction.empty()) {  // the coarsest level's first step: v = restricted gradient - this gradient
    for (std::size_t s = 0; s < parameters.size(); ++s)
      level.correction.push_back(level.restricted_gradient[s].defined() && parameters[s].gradient.defined()
                                     ? level.restricted_gradient[s] - parameters[s].gradient
                                     : at::Tensor());
  }
  for (std::size_t s = 0; s < parameters.size(); ++s)
    if (parameters[s].gradient.defined() && level.correction[s].defined()) parameters[s].gradient.add_(level.correction[s]);
}

// Runs the level's Program again on the batch (its parameters are still the
// restricted ones, its correction made from the step's first run) and
// compares grad f_l + v_l with the restricted fine gradient, relative to the
// latter's norm, over all ranks. Leaves the fresh run's corrected gradients
// in place of the first run's.
double Trainer::correction_error(Level& level, const Batch& batch, int step) {
  run_program(level, program_for(level, settings_), batch, true, step);
  auto parameters = slots(level);
  add_correction(level, parameters);
  double difference = 0, norm = 0;
  for (std::size_t s = 0; s < parameters.size(); ++s) {
    if (!level.restricted_gradient[s].defined() || !parameters[s].gradient.defined()) continue;
    const at::Tensor target = level.restricted_gradient[s].to(at::kDouble);
    difference += (parameters[s].gradient.to(at::kDouble) - target).pow(2).sum().item<double>();
    norm += target.pow(2).sum().item<double>();
  }
  const auto sums = world_.sum_all({difference, norm});
  return sums[1] > 0 ? std::sqrt(sums[0] / sums[1]) : 0;
}

}  // namespace plait::executor::detail
