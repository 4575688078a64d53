// A small transformer pipeline for the schedule and simulator tests: `stages`
// stages over `layers` blocks, the batch of 8 split into `micro_batches`.
#pragma once

#include "plait/schedule/build.hpp"

namespace plait::testing {

inline schedule::BuildSpec pipeline_spec(int layers, int stages, int micro_batches) {
  schedule::BuildSpec spec;
  spec.layers = layers;
  spec.ranks = stages;
  spec.micro_batches = micro_batches;
  spec.model.d_model = 32;
  spec.model.heads = 4;
  spec.model.seq = 8;
  spec.model.batch = 8;
  spec.model.mlp_ratio = 2;
  return spec;
}

}  // namespace plait::testing
