// The reference backend: std::vector<double> states for the test problems
// ("linear": u' = lambda u, "mlp": small tanh MLP blocks), with all ranks of a
// Program run as threads of one process.
#pragma once

#include <vector>

#include "plait/schedule/interpret.hpp"

namespace plait::schedule {

// The test problem's blocks: parameters and the step, its adjoint and gradient.
class ReferenceModel {
 public:
  ReferenceModel(const ModelDesc& model, int layers);

  int layers() const { return layers_; }
  int state_size() const { return state_size_; }
  std::vector<double> input() const;

  // out = Phi_block(u) with step size span*h.
  std::vector<double> step(int block, int span, const std::vector<double>& u) const;
  // out = J^T w, J the Jacobian of Phi_block at u; adds the parameter gradient into grad if given.
  std::vector<double> step_adjoint(int block, int span, const std::vector<double>& u,
                                   const std::vector<double>& w, std::vector<double>* grad) const;
  // J = 0.5 ||u||^2 and its gradient u.
  double loss(const std::vector<double>& u) const;

  std::vector<double>& parameters(int block) { return parameters_[block]; }
  const std::vector<double>& parameters(int block) const { return parameters_[block]; }

 private:
  ModelDesc model_;
  int layers_;
  int state_size_;
  double h_;
  std::vector<std::vector<double>> parameters_;  // per block
};

// Ground truth: plain serial forward, loss and backprop, no IR involved.
struct SerialSolution {
  std::vector<double> final_state;
  double loss = 0;
  std::vector<std::vector<double>> gradients;  // per block
};
SerialSolution solve_serial(const ReferenceModel& model);

struct ReferenceRun {
  std::vector<double> final_state;  // u[0][N]
  double loss = 0;
  std::vector<std::vector<double>> gradients;  // per block, gathered from the owning ranks
  RunResult result;                            // residual norms (rank 0's copy; all ranks agree)
};

// Runs every rank of `program` (threads, in-process messages) on `model`.
ReferenceRun run_reference(const Program& program, const ReferenceModel& model);

// `plait solve`: an MGRIT Program on a test problem against the serial solution.
struct SolveReport {
  int iterations = 0;                   // forward MGRIT iterations run
  std::vector<double> residual_norms;   // forward, per iteration (XBraid convention)
  std::vector<double> adjoint_residual_norms;
  std::vector<double> final_state;      // u[N]
  std::vector<double> serial_final_state;
  double max_abs_error_vs_serial = 0;   // over u[N]
  double max_abs_gradient_error_vs_serial = 0;
};
SolveReport solve_reference(const Program& program);

}  // namespace plait::schedule
