// The trainer of `plait-exec train`, private to the executor. Its parts live
// in one file each: the loop (trainer.cpp), the detector (detector.cpp), the
// output directory and checkpoints (run_files.cpp) and the multilevel cycle
// (multilevel_cycle.cpp).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "../detail/transformer.hpp"
#include "data.hpp"
#include "level_transfer.hpp"
#include "optimizer.hpp"
#include "plait/executor/exec.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/executor/train.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/interpret.hpp"
#include "task_model.hpp"

namespace plait::executor::detail {

// Rank-collective agreement: a plait::Error anywhere is an AgreedError everywhere.
template <typename Body>
void agreed(World& world, Body&& body) {
  std::optional<Error> problem;
  try {
    body();
  } catch (const Error& error) {
    problem = error;
  }
  const int reporter = world.first_failed(problem.has_value());
  if (reporter >= 0)
    throw AgreedError(problem ? *problem : Error("rank " + std::to_string(reporter), "failed"), reporter);
}

// The solver settings as a JSON object (metrics, state.json, summary.json).
inline nlohmann::json settings_object(const training::SolverSettings& settings) {
  return nlohmann::json::parse(training::settings_json(settings));
}

// One network of the run: level 0 is the config's, level l has ode_layers /
// cf^l ODE blocks (multilevel training). Each level has its own ODE blocks,
// Programs and optimizer; the parts outside the ODE (TaskModel) are shared.
struct Level {
  int index = 0;
  training::TrainConfig config;  // ode_layers of this level
  std::map<std::string, schedule::Program> programs;  // by settings (and "/eval")
  std::vector<std::int32_t> partition;  // ODE blocks per rank, as every Program of the level splits them
  std::unique_ptr<TorchBackend> backend;
  std::unique_ptr<Optimizer> optimizer;
  double parameters = 0;  // elements updated by a step at this level, all ranks
  // Multilevel cycle state (coarse levels): this cycle's transfer from the
  // level above, the parameters as restricted at the cycle's start, the
  // correction added to each slot's gradient, the restricted fine gradient
  // the coarse objective's gradient equals there, the optimizer state as
  // restricted (momentum "restrict"; per state kind, in slot order) and the
  // constant that makes the objective's value the finest loss there.
  std::unique_ptr<LevelTransfer> transfer;
  std::vector<at::Tensor> start, correction, restricted_gradient;
  std::vector<std::vector<at::Tensor>> state_start;
  double objective_offset = 0;
};

// --check-correction at a cycle's first coarse step, relative errors: the
// corrected objective's gradient against the restricted fine gradient, its
// value against the finest loss (with the correction), and the fine loss's
// slope along a prolonged change against the restricted gradient's (first
// coarse level only; -1: not checked).
struct CorrectionCheck {
  double gradient_error = 0, value_error = -1, transfer_error = -1;
};

class Trainer {
 public:
  Trainer(World& world, const training::TrainConfig& config, const TrainOverrides& overrides);
  TrainSummary run();

 private:
  using Settings = training::SolverSettings;
  struct Outcome {
    schedule::RunResult result;
    double loss = 0;
    std::int64_t correct = 0, count = 0;
    double flops = 0;  // forward + backward, all ranks (no optimizer)
  };

  bool first() const { return world_.rank() == 0; }
  bool last() const { return world_.rank() == world_.size() - 1; }
  const schedule::Program& program_for(Level& level, const Settings& settings, bool evaluation = false);
  Outcome run_program(Level& level, const schedule::Program& program, const Batch& batch, bool with_gradients, int step);
  // The parameters a step at `level` updates on this rank (its ODE blocks,
  // then the shared ones) and their gradients of the last run.
  std::vector<ParameterSlot> slots(Level& level);
  std::vector<at::Tensor> gradient_snapshot(Level& level);
  double global_sum(double local) { return world_.sum_all({local}).at(0); }
  std::pair<double, double> evaluate();

  // detector.cpp
  DetectorEvent probe(int step, const Batch& batch, std::vector<at::Tensor>& serial_gradient);
  void compare_gradients(const std::vector<at::Tensor>& serial, DetectorEvent& event);
  void apply_policy(DetectorEvent& event);

  // run_files.cpp
  void save_checkpoint(int step, double elapsed);
  int load_checkpoint(double& elapsed);
  void prepare_output();
  // Returns the cumulative FLOPs and training time of the last line kept
  // (rank 0; zeros elsewhere).
  std::pair<double, double> keep_metrics_up_to(int step);
  void write_metric(const nlohmann::json& record);
  void write_csv();
  void write_summary(const TrainSummary& summary);

  // multilevel_cycle.cpp. Restricts every level from the finest and builds
  // the corrections on the cycle's first batch; returns the FLOPs it spent.
  double begin_cycle(int step, const Batch& batch);
  struct Prolongation {
    double flops = 0;  // of the line search's forward runs
    double step = 1;   // the fraction of the change kept
  };
  // Adds level `coarse`'s change since the cycle's start to level coarse - 1
  // (and, with line_search onto the finest level, backtracks it).
  Prolongation prolong(int coarse, int step);
  // A step's gradients at a coarse level plus its correction; the first
  // step at the coarsest level makes the correction from its own gradient and loss.
  void add_correction(Level& level, std::vector<ParameterSlot>& parameters, double loss);
  void make_correction(Level& level, const std::vector<at::Tensor>& gradient, double loss);
  // The corrected objective psi_l at the level's parameters, `loss` its f_l there.
  double objective(Level& level, double loss);
  CorrectionCheck check_correction(Level& level, const Batch& batch, int step);
  LevelTransfer transfer_to(int coarse, int cycle);
  // The finest level's loss on `batch` without dropout (forward only); returns its FLOPs.
  double forward_loss(const Batch& batch, int step, double& loss);
  std::vector<std::vector<at::Tensor>> optimizer_states(Level& level);
  void set_optimizer_states(Level& level, const std::vector<std::vector<at::Tensor>>& states);
  static void reset_optimizer(Level& level);

  World& world_;
  const training::TrainConfig& config_;
  const TrainOverrides& overrides_;
  std::filesystem::path out_;
  std::unique_ptr<TrainingData> data_;
  Settings settings_;
  bool detector_active_ = true;
  std::vector<Level> levels_;
  std::unique_ptr<ModelContext> context_;
  std::unique_ptr<TaskModel> model_;
  double outside_flops_ = 0;  // per training step, outside the ODE blocks
  Batch cycle_batch_;           // the multilevel cycle's first batch
  double finest_loss_ = 0;      // f_0 at the cycle's start on that batch (with the correction)
  double line_search_reference_ = 0;  // the same without dropout (line_search)
  std::vector<DetectorEvent> probes_;
  std::map<std::string, double> predictions_;  // prediction_key -> predicted step of the ODE solve
};

}  // namespace plait::executor::detail
