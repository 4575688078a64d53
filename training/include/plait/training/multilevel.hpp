// The multilevel cycle of `"solver": {"mode": "multilevel"}` as a plan over
// optimizer steps, and the FLOPs a training step costs. Torch-free: the
// executor's trainer runs the plan, tests check it here.
#pragma once

#include <cstdint>
#include <vector>

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

// How a coarse block relates to the fine blocks g*cf .. g*cf+cf-1 of its
// interval in cycle `cycle` (offsets within the interval). Restriction sets
// it to the mean of `restrict_from`; prolongation adds its change to each of
// `prolong_to`; a gradient restricts by the transpose of that prolongation,
// the sum over `prolong_to`, so that a coarse change e changes the fine loss
// by <restricted gradient, e> to first order.
struct BlockTransfer {
  std::vector<int> restrict_from, prolong_to;
};
BlockTransfer block_transfer(const MultilevelConfig& multilevel, int cycle);

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
