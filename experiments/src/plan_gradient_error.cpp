// MGRIT's gradient error for `plait plan`: measured, not modelled, on a proxy
// of the user's network at its own depth: the reference backend's tanh-MLP
// blocks (width 8, end time 1, so h = 1 / layers as a transformer's residual
// steps in plait), with the candidate's levels, coarsening factor and
// iterations. The relative error is ||g - g_serial|| / ||g_serial|| over every
// block's gradient; three weight seeds give the worst and the spread. What the
// proxy cannot say: how a trained transformer's blocks (less smooth in depth
// than random tanh blocks) change the convergence factor.
#include <cmath>

#include "detail/plan.hpp"
#include "plait/schedule/reference.hpp"

namespace plait::experiments::detail {
namespace {

double relative_gradient_error(const Candidate& candidate, int layers, unsigned seed) {
  schedule::BuildSpec spec;
  spec.layers = layers;
  spec.ranks = 1;  // MGRIT's answer does not depend on the ranks it is split over
  spec.model.kind = "mlp";
  spec.model.width = 8;
  spec.model.tstop = 1;
  spec.model.seed = seed;
  spec.forward = {.levels = candidate.levels, .coarsening_factor = candidate.cf, .iterations = candidate.fwd_iters};
  spec.adjoint = {.levels = candidate.levels, .coarsening_factor = candidate.cf, .iterations = candidate.bwd_iters};
  const schedule::Program program = schedule::build_mgrit(spec);
  const schedule::ReferenceModel model(program.model, program.layers);
  const schedule::ReferenceRun run = schedule::run_reference(program, model);
  const schedule::SerialSolution serial = schedule::solve_serial(model);
  double difference = 0, norm = 0;
  for (int block = 0; block < layers; ++block)
    for (std::size_t i = 0; i < serial.gradients[block].size(); ++i) {
      const double want = serial.gradients[block][i];
      difference += std::pow(run.gradients[block][i] - want, 2);
      norm += want * want;
    }
  return norm > 0 ? std::sqrt(difference / norm) : 0;
}

}  // namespace

GradientError GradientErrors::of(const Candidate& candidate, int layers) {
  const auto key = std::tuple(layers, candidate.levels, candidate.cf, candidate.fwd_iters, candidate.bwd_iters);
  const std::lock_guard lock(mutex_);  // cheap beside the estimates: one at a time
  if (const auto found = cache_.find(key); found != cache_.end()) return found->second;
  double lowest = INFINITY, highest = 0;
  for (const unsigned seed : {1u, 2u, 3u}) {
    const double error = relative_gradient_error(candidate, layers, seed);
    lowest = std::min(lowest, error), highest = std::max(highest, error);
  }
  return cache_[key] = {highest, highest - lowest};
}

}  // namespace plait::experiments::detail
