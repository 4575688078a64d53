// The multilevel cycle of `"solver": {"mode": "multilevel"}` as a plan over
// optimizer steps, and the FLOPs a training step costs. Torch-free: the
// executor's trainer runs the plan, tests check it here.
#pragma once

#include <cstdint>

#include "plait/training/config.hpp"

namespace plait::training {

// Optimizer steps of one cycle: coarse_steps + (levels - 1) * fine_steps
// (1 for single-level training).
int cycle_steps(const TrainConfig& config);

// What happens at optimizer step `step` (0-based) of a run.
struct CycleStep {
  int level = 0;             // the level whose parameters the step updates
  bool starts_cycle = false;  // first restrict every level from the finest (and build the corrections)
  int prolong_from = -1;     // first add level prolong_from's change to level prolong_from - 1 (-1: none)
};
CycleStep cycle_step(const TrainConfig& config, int step);

// FLOPs of one training step outside the ODE blocks, forward and backward:
// the buffer blocks (schedule::work_table's forward plus parameter-gradient
// backward, 3.1 forwards), the head and the embedding (a GEMM's forward and
// its two backward GEMMs); gathers, norms and the loss are not counted.
// `vocab`: char-lm's vocabulary (vit: ignored, 10 classes).
double outside_flops(const TrainConfig& config, int vocab);

// FLOPs of one optimizer update of `parameters` elements: element-wise
// operations per element of optimizer.cpp's update (AdamW 14, SGD 6).
double optimizer_flops(const OptimizerConfig& optimizer, double parameters);

}  // namespace plait::training
