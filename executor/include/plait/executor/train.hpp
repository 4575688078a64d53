// Layer-parallel training: `plait-exec train config.json` on every rank.
// The ODE blocks run as the Program's steps (serial or MGRIT, forward and
// adjoint), the embedding and the first buffer blocks on the first rank, the
// last buffer blocks and the head on the last rank. Includes no torch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "plait/executor/world.hpp"
#include "plait/training/config.hpp"

namespace plait::executor {

struct TrainOverrides {
  std::optional<std::string> out, mode, device;
  std::optional<int> steps;
  bool resume = false;  // continue from out/checkpoint
  bool force = false;   // replace another run's results in out
  int threads = 1;      // intra-op threads per rank
  bool show_progress = true;  // a progress line on a terminal (never in CI)
  std::string predictions_path;  // plait train --profile: predicted step times, recorded in the metrics
  int inject_nan_at_step = -1;  // fault injection (tests): this step's loss is NaN
  // Multilevel: at each cycle's first coarse step, evaluate the coarse
  // objective's gradient again and record its relative difference from the
  // restricted fine gradient ("correction_error"); the extra runs are a check.
  bool check_correction = false;
};

struct DetectorEvent {
  int step = 0;
  double forward_factor = 0, adjoint_factor = 0;  // convergence factors at the probe (0: not measured)
  double gradient_relative_error = 0, gradient_cosine = 0;  // MGRIT vs serial gradient, same batch
  std::string action;  // "none", "switch-to-serial", "raise-iterations", "at-cap"
};

struct TrainSummary {
  int steps = 0;
  double final_loss = 0;
  std::optional<double> validation_loss, validation_accuracy;
  double median_step_s = 0;  // median wall time of a training step (probes and evaluations excluded)
  double wall_s = 0;
  double flops = 0;  // of every training step (forward, backward, optimizer; evaluation not counted)
  std::vector<DetectorEvent> probes;  // every detector probe, in order
  std::string final_mode;
};

// Applies the overrides; throws plait::Error on values the config would reject.
training::TrainConfig apply_overrides(training::TrainConfig config, const TrainOverrides& overrides);

// Collective: every rank loads and validates the config and applies the
// overrides; a failure anywhere is an AgreedError on every rank.
training::TrainConfig load_train_config_on_all(World& world, const std::string& path, const TrainOverrides& overrides);

// Collective. Bad input (config, data, checkpoint) is an AgreedError on every rank.
TrainSummary train(World& world, const training::TrainConfig& config, const TrainOverrides& overrides);

std::string summary_text(const TrainSummary& summary);

}  // namespace plait::executor
