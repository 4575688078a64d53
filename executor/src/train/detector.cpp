// The detector: every `detector.interval` steps the MGRIT solves run once more
// with twice the iterations, their convergence factors are read, and the
// step's gradient is compared with the serial one of the same batch.
#include <algorithm>
#include <cmath>

#include "../detail/backend_access.hpp"
#include "trainer.hpp"

namespace plait::executor::detail {

namespace {

// Probes run twice the iterations, and at least three where skipping the
// first down-cycle's relaxation leaves the first iteration without a residual:
// the convergence factor needs two residuals.
schedule::PhaseSpec probe_phase(schedule::PhaseSpec phase) {
  if (phase.levels > 1) phase.iterations = std::max(2 * phase.iterations, 3);
  return phase;
}

}  // namespace

// Convergence factors of the solves at twice the iterations, and the serial
// gradient of the same batch (for compare_gradients after the step's own solve).
DetectorEvent Trainer::probe(int step, const Batch& batch, std::vector<at::Tensor>& serial_gradient) {
  DetectorEvent event{.step = step};
  Settings doubled = settings_;
  doubled.forward = probe_phase(settings_.forward);
  doubled.adjoint = probe_phase(settings_.adjoint);
  Level& fine = levels_.front();
  const Outcome probed = run_program(fine, program_for(fine, doubled), batch, true, step);
  auto factor = [](const std::vector<double>& norms) {
    return norms.size() >= 2 && norms[norms.size() - 2] > 0 ? norms.back() / norms[norms.size() - 2] : 0.0;
  };
  event.forward_factor = factor(probed.result.forward_residual_norms);
  event.adjoint_factor = factor(probed.result.adjoint_residual_norms);
  run_program(fine, program_for(fine, training::serial_settings(settings_)), batch, true, step);
  serial_gradient = gradient_snapshot(fine);
  return event;
}

// Relative error and cosine of this step's gradient (in the slots now)
// against the serial gradient of the same batch, over all ranks.
void Trainer::compare_gradients(const std::vector<at::Tensor>& serial, DetectorEvent& event) {
  const auto mine = slots(levels_.front());
  double dot = 0, norm = 0, serial_norm = 0, difference = 0;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (!mine[i].gradient.defined() || !serial[i].defined()) continue;
    const at::Tensor g = mine[i].gradient.to(at::kDouble), e = serial[i].to(at::kDouble);
    dot += (g * e).sum().item<double>();
    norm += g.pow(2).sum().item<double>();
    serial_norm += e.pow(2).sum().item<double>();
    difference += (g - e).pow(2).sum().item<double>();
  }
  const auto sums = world_.sum_all({dot, norm, serial_norm, difference});
  event.gradient_relative_error = sums[2] > 0 ? std::sqrt(sums[3] / sums[2]) : 0;
  event.gradient_cosine = sums[1] > 0 && sums[2] > 0 ? sums[0] / std::sqrt(sums[1] * sums[2]) : 0;
}

void Trainer::apply_policy(DetectorEvent& event) {
  const double factor = std::max(event.forward_factor, event.adjoint_factor);
  if (!(factor > config_.detector.threshold)) {
    event.action = "none";
    return;
  }
  if (config_.detector.policy == "switch-to-serial") {
    settings_ = training::serial_settings(settings_);
    detector_active_ = false;
    event.action = "switch-to-serial";
    return;
  }
  bool raised = false;
  for (schedule::PhaseSpec* phase : {&settings_.forward, &settings_.adjoint})
    if (phase->levels > 1 && phase->iterations < config_.detector.max_iterations) {
      phase->iterations += 1;
      raised = true;
    }
  event.action = raised ? "raise-iterations" : "at-cap";
}

}  // namespace plait::executor::detail
