// The entry points of `plait-exec train` (plait/executor/train.hpp): command-line
// overrides of a training config, the config read on every rank, the run, its summary.
#include <algorithm>
#include <sstream>

#include "plait/executor/exec.hpp"
#include "plait/training/multilevel.hpp"
#include "trainer.hpp"

namespace plait::executor {

using training::TrainConfig;

training::TrainConfig apply_overrides(training::TrainConfig config, const TrainOverrides& overrides) {
  if (overrides.out) config.out = *overrides.out;
  if (overrides.device) config.device = *overrides.device;
  if (overrides.mode) {
    if (*overrides.mode != "serial" && *overrides.mode != "mgrit") throw Error("--mode", "must be serial or mgrit");
    config.solver.mode = *overrides.mode;
    if (config.solver.mode == "serial") config.detector.interval = 0;
  }
  if (overrides.steps) {
    if (*overrides.steps < 1) throw Error("--steps", "must be at least 1");
    config.steps = *overrides.steps;
    config.optimizer.warmup_steps = std::min(config.optimizer.warmup_steps, config.steps);
    if (config.steps % training::cycle_steps(config) != 0)
      throw Error("--steps", "must be a whole number of multilevel cycles of " +
                                 std::to_string(training::cycle_steps(config)) + " optimizer steps");
  }
  if (overrides.threads < 1) throw Error("--threads", "must be at least 1");
  return config;
}

TrainConfig load_train_config_on_all(World& world, const std::string& path, const TrainOverrides& overrides) {
  TrainConfig config;
  detail::agreed(world, [&] { config = apply_overrides(training::load_train_config(path), overrides); });
  return config;
}

TrainSummary train(World& world, const TrainConfig& config, const TrainOverrides& overrides) {
  set_up_compute(overrides.threads);
  detail::Trainer trainer(world, config, overrides);
  return trainer.run();
}

std::string summary_text(const TrainSummary& s) {
  std::ostringstream out;
  out << "trained " << s.steps << " steps: loss " << s.final_loss;
  if (s.validation_loss) out << ", validation loss " << *s.validation_loss;
  if (s.validation_accuracy) out << ", accuracy " << *s.validation_accuracy;
  out << "\n  median step " << s.median_step_s << " s, wall " << s.wall_s << " s, " << s.flops << " FLOPs, final mode "
      << s.final_mode;
  out << ", " << s.probes.size() << " detector probe(s)\n";
  for (const auto& p : s.probes)
    out << "  probe at step " << p.step << ": factors " << p.forward_factor << " / " << p.adjoint_factor
        << ", gradient rel. error " << p.gradient_relative_error << ", cosine " << p.gradient_cosine << ": "
        << p.action << "\n";
  return out.str();
}

}  // namespace plait::executor
