// Block steps of a built Program against the closed forms of the lean cycle
// (README, "Work per training step"), over a grid of settings and ranks.
#include <gtest/gtest.h>

#include <cstdint>

#include "plait/schedule/build.hpp"
#include "plait/schedule/summary.hpp"

namespace plait::schedule {
namespace {

// Intervals of level l: the forward grid keeps k*cf^l <= N; the adjoint grid
// keeps N - k*cf^l >= 0 and always the end point 0.
std::int64_t intervals(int layers, int cf, int level, bool adjoint) {
  std::int64_t stride = 1;
  for (int l = 0; l < level; ++l) stride *= cf;
  return adjoint ? (layers + stride - 1) / stride : layers / stride;
}

// Block steps of one cycle from `level` down and back.
std::int64_t cycle_steps(int layers, const PhaseSpec& phase, int level, bool skip, bool adjoint) {
  const std::int64_t n = intervals(layers, phase.coarsening_factor, level, adjoint);
  if (level == phase.levels - 1) return n;  // coarsest: a sweep
  const std::int64_t coarse = intervals(layers, phase.coarsening_factor, level + 1, adjoint);
  const std::int64_t interpolation = level > 0 ? n - coarse : 0;  // none on the fine level
  const std::int64_t below = cycle_steps(layers, phase, level + 1, skip, adjoint);
  if (skip) return below + interpolation;
  const std::int64_t relaxation = phase.relax == Relax::F ? n : 2 * n;  // ends in F + C-steps
  return relaxation + coarse /* FAS right-hand side */ + below + interpolation;
}

std::int64_t iteration_steps(int layers, const PhaseSpec& phase, bool adjoint) {
  const bool skip = phase.skip_first_down_relax;
  return cycle_steps(layers, phase, 0, skip, adjoint) +
         (phase.iterations - 1) * cycle_steps(layers, phase, 0, false, adjoint);
}

std::int64_t forward_steps(int layers, const PhaseSpec& phase) {
  if (phase.levels == 1) return layers;
  const std::int64_t c_points = intervals(layers, phase.coarsening_factor, 1, false);
  const bool fine_level_relaxed = phase.iterations > 1 || !phase.skip_first_down_relax;
  // Final F-points: all when the fine level was never relaxed, else the tail after the last C-point.
  const std::int64_t final_steps =
      fine_level_relaxed ? layers - c_points * phase.coarsening_factor : layers - c_points;
  return iteration_steps(layers, phase, false) + final_steps;
}

// Fine blocks whose forward step keeps no graph: the forward C-points (their
// values change in the correction after the last relaxation) but the last one
// when a tail of F-points follows it (the final sweep recomputes the tail).
std::int64_t blocks_without_graph(int layers, const PhaseSpec& forward) {
  return forward.levels == 1 ? 0 : intervals(layers, forward.coarsening_factor, 1, false);
}

// Adjoint steps by cost key. A fine relaxation covers every block once (F) or
// twice (FCF); coarse steps always recompute; the gradient sweep covers every block once.
struct AdjointSteps {
  std::int64_t adjoint = 0, adjoint_recompute = 0, gradient = 0, gradient_recompute = 0;
};
AdjointSteps adjoint_steps(int layers, const PhaseSpec& phase, const PhaseSpec& forward) {
  const std::int64_t recomputing = blocks_without_graph(layers, forward);
  AdjointSteps out{.gradient = layers - recomputing, .gradient_recompute = recomputing};
  if (phase.levels == 1) return out;
  const std::int64_t relaxed_iterations = phase.iterations - (phase.skip_first_down_relax ? 1 : 0);
  const std::int64_t sweeps = phase.relax == Relax::F ? 1 : 2;
  out.adjoint = relaxed_iterations * sweeps * (layers - recomputing);
  out.adjoint_recompute = iteration_steps(layers, phase, true) - out.adjoint;
  return out;
}

std::int64_t counted(const ProgramSummary& summary, const std::string& key) {
  std::int64_t total = 0;
  for (const auto& rank : summary.ranks) {
    const auto found = rank.ops_by_cost_key.find(key);
    if (found != rank.ops_by_cost_key.end()) total += found->second;
  }
  return total;
}

TEST(OpCounts, TorchBraidSettingsDoXBraidsWork) {
  // N 32, 2 levels, cf 4, F, skip, 2 forward and 1 adjoint iterations: TorchBraid
  // does 57 forward steps and 40 forward+vjp pairs.
  BuildSpec spec;
  spec.layers = 32;
  spec.forward = {.levels = 2, .coarsening_factor = 4, .relax = Relax::F, .iterations = 2};
  spec.adjoint = {.levels = 2, .coarsening_factor = 4, .relax = Relax::F, .iterations = 1};
  const auto summary = summarize(build_mgrit(spec));
  EXPECT_EQ(counted(summary, "block.fwd") + counted(summary, "block.fwd_keep"), 56);
  EXPECT_EQ(counted(summary, "block.fwd_keep"), 24);  // the last relaxation keeps the graphs block.adj_grad uses
  EXPECT_EQ(counted(summary, "block.adj_recompute"), 8);  // the coarse sweep
  EXPECT_EQ(counted(summary, "block.adj_grad"), 24);      // on graphs kept by the last relaxation
  EXPECT_EQ(counted(summary, "block.adj_grad_recompute"), 8);  // C-point blocks, corrected after it
}

TEST(OpCounts, EqualTheClosedFormsOverAGrid) {
  int checked = 0;
  for (int layers : {8, 13, 32, 100, 1024}) {
    for (int levels = 1; levels <= 4; ++levels) {
      for (int cf : {2, 3, 4, 8}) {
        for (Relax relax : {Relax::F, Relax::FCF}) {
          for (int iterations = 1; iterations <= 4; ++iterations) {
            for (bool skip : {true, false}) {
              for (int ranks : {1, 2, 3, 7}) {
                BuildSpec spec;
                spec.layers = layers;
                spec.ranks = ranks;
                spec.model.kind = "linear";
                spec.forward = {levels, cf, relax, iterations, skip};
                // The adjoint differs: one level fewer (at least 2), the other relaxation, fewer iterations.
                spec.adjoint = {std::max(2, levels - 1), cf, relax == Relax::F ? Relax::FCF : Relax::F,
                                std::max(1, iterations - 1), !skip};
                const auto summary = summarize(build_mgrit(spec));
                const auto where = testing::Message() << "N " << layers << " L " << levels << " cf " << cf
                                                      << " " << to_string(relax) << " K " << iterations
                                                      << " skip " << skip << " P " << ranks;
                ASSERT_EQ(counted(summary, "block.fwd") + counted(summary, "block.fwd_keep"),
                          forward_steps(layers, spec.forward))
                    << where;
                const auto adjoint = adjoint_steps(layers, spec.adjoint, spec.forward);
                ASSERT_EQ(counted(summary, "block.adj"), adjoint.adjoint) << where;
                ASSERT_EQ(counted(summary, "block.adj_recompute"), adjoint.adjoint_recompute) << where;
                ASSERT_EQ(counted(summary, "block.adj_grad"), adjoint.gradient) << where;
                ASSERT_EQ(counted(summary, "block.adj_grad_recompute"), adjoint.gradient_recompute) << where;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 5 * 4 * 4 * 2 * 4 * 2 * 4);
}

TEST(OpCounts, SerialIsOneSweepEachWay) {
  for (int layers : {1, 7, 64}) {
    BuildSpec spec;
    spec.layers = layers;
    spec.model.kind = "linear";
    const auto summary = summarize(build_serial(spec));
    EXPECT_EQ(counted(summary, "block.fwd_keep"), layers);  // every step keeps its graph for the adjoint
    EXPECT_EQ(counted(summary, "block.fwd"), 0);
    EXPECT_EQ(counted(summary, "block.adj_grad"), layers);
    EXPECT_EQ(counted(summary, "block.adj"), 0);
  }
}

}  // namespace
}  // namespace plait::schedule
