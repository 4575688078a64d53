#include "plait/training/multilevel.hpp"

#include "plait/schedule/cost_keys.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/program.hpp"

namespace plait::training {

int cycle_steps(const TrainConfig& config) {
  const auto& ml = config.solver.multilevel;
  if (training_levels(config) == 1) return 1;
  return ml.coarse_steps + (ml.levels - 1) * ml.fine_steps;
}

// A cycle: coarse_steps on the coarsest level L-1, then fine_steps on each of
// levels L-2 .. 0, each level's first step preceded by the prolongation of
// the coarser level's change (with coarse_steps 0 the first one happens at
// the cycle's first step, right after the restriction).
CycleStep cycle_step(const TrainConfig& config, int step) {
  const int levels = training_levels(config);
  if (levels == 1) return {};
  const auto& ml = config.solver.multilevel;
  const int position = step % cycle_steps(config);
  CycleStep out;
  out.starts_cycle = position == 0;
  if (position < ml.coarse_steps) {
    out.level = levels - 1;
    return out;
  }
  const int since = position - ml.coarse_steps;
  out.level = levels - 2 - since / ml.fine_steps;
  if (since % ml.fine_steps == 0) out.prolong_from = out.level + 1;
  return out;
}

BlockTransfer block_transfer(const MultilevelConfig& ml, int cycle) {
  std::vector<int> interval(std::size_t(ml.cf));
  for (int j = 0; j < ml.cf; ++j) interval[std::size_t(j)] = j;
  std::string kind = ml.restriction;
  if (kind == "alternate") kind = cycle % 2 == 0 ? "even" : "odd";
  if (kind == "injection") return {{0}, interval};
  if (kind == "average") return {interval, interval};
  if (kind == "even") return {{0}, {0}};
  if (kind == "odd") return {{1}, {1}};
  throw Error("solver", "unknown restriction \"" + ml.restriction + "\"");
}

double outside_flops(const TrainConfig& config, int vocab) {
  const auto& m = config.model;
  const schedule::ModelDesc block = build_spec(config, initial_settings(config), 1).model;
  const auto table = schedule::work_table(block);
  const double per_buffer_block = table.at(std::string(schedule::cost_keys::block_forward_keep)).flops +
                                  table.at(std::string(schedule::cost_keys::block_gradient)).flops;
  const double d = m.d_model, tokens = double(m.batch) * m.seq;
  const auto gemm_with_gradients = [](double rows, double inner, double columns) { return 3 * 2 * rows * inner * columns; };
  double edges = 0;
  if (config.task == "vit") {
    const double patches = tokens - m.batch, pixels = double(m.patch) * m.patch;  // the class token has no patch
    edges = gemm_with_gradients(patches, pixels, d) + gemm_with_gradients(m.batch, d, vit_classes);
  } else {
    edges = gemm_with_gradients(tokens, d, vocab);
  }
  return (m.buffer_before + m.buffer_after) * per_buffer_block + edges;
}

double optimizer_flops(const OptimizerConfig& optimizer, double parameters) {
  return (optimizer.kind == "adamw" ? 14.0 : 6.0) * parameters;
}

}  // namespace plait::training
