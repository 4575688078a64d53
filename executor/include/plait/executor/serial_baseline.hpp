// The serial baseline: an ordinary forward over all blocks, the loss, and an
// autograd backward, on the same weights, input and loss as the torch backend.
// It is the denominator of every speedup plait reports. No IR involved.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plait/schedule/program.hpp"

namespace plait::executor {

class SerialBaseline {
 public:
  // Builds all `layers` blocks (step h = model.tstop / layers).
  SerialBaseline(const schedule::ModelDesc& model, int layers, const std::string& device = "cpu");
  ~SerialBaseline();
  SerialBaseline(const SerialBaseline&) = delete;
  SerialBaseline& operator=(const SerialBaseline&) = delete;

  // One training step: zero gradients, forward, loss, backward (a full GPT
  // step, model.vocab > 0: its embeddings, loss and the optimizer step at
  // learning rate 0, as a measured Program runs them). Returns the loss
  // (reading it waits for the device).
  double run_step();
  // The same step without reading the loss back (no device sync): for timing.
  void run_step_async();
  void synchronize();
  // This core's speed as the steps have it: a plain forward step (no graph)
  // of each block in turn on the input, the cycle repeated for at least
  // `min_seconds`; the median cycle over its block count. The executor's
  // speed probe (plait-exec --speed-probe) does the same on a rank's blocks.
  double time_forward_cycle(double min_seconds);

  int layers() const;
  // Results of the last step, fp64 host copies, flattened.
  std::vector<double> output() const;
  // A block's gradient, or a GPT step's ends' (embedding_gradient_id, final_norm_gradient_id).
  std::vector<double> gradient(int block) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace plait::executor
