// Small transformer Programs and options shared by the executor tests: small
// enough for CI's two cores.
#pragma once

#include "plait/executor/exec.hpp"
#include "plait/schedule/build.hpp"

namespace plait::executor::test_support {

inline schedule::BuildSpec small_spec(int ranks, int layers, int iterations_forward, int iterations_adjoint) {
  schedule::BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = iterations_forward};
  spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = schedule::Relax::F, .iterations = iterations_adjoint};
  spec.model.d_model = 32;
  spec.model.heads = 4;
  spec.model.seq = 8;
  spec.model.batch = 2;
  spec.model.mlp_ratio = 2;
  spec.model.dtype = "fp32";
  return spec;
}

// A pipeline of the small blocks: `ranks` stages, 4 micro-batches of one sample.
inline schedule::BuildSpec small_pipeline_spec(int ranks) {
  schedule::BuildSpec spec = small_spec(ranks, 12, 1, 1);
  spec.model.batch = 4;
  spec.micro_batches = 4;
  return spec;
}

// One measured step, checked against the serial baseline.
inline ExecOptions check_options() {
  ExecOptions options;
  options.steps = 1;
  options.warmup = 0;
  options.check_serial = true;
  return options;
}

}  // namespace plait::executor::test_support
