// Builder settings, partitions and the grid for awkward depths.
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/reference.hpp"
#include "plait/schedule/summary.hpp"

namespace plait::schedule {
namespace {

BuildSpec linear_spec(int layers, int levels, int cf, int ranks) {
  BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = levels, .coarsening_factor = cf, .relax = Relax::FCF, .iterations = 2};
  spec.adjoint = spec.forward;
  spec.model.kind = "linear";
  return spec;
}

std::string error_of(const BuildSpec& spec) {
  return plait::testing::error_of([&] { build_mgrit(spec); });
}

TEST(Build, RejectsBadSettingsWithReasons) {
  auto spec = linear_spec(16, 0, 2, 1);
  EXPECT_EQ(error_of(spec), "forward.levels: must be >= 1");
  spec = linear_spec(16, 2, 1, 1);
  EXPECT_EQ(error_of(spec), "forward.cf: must be >= 2");
  spec = linear_spec(0, 2, 2, 1);
  EXPECT_EQ(error_of(spec), "layers: must be >= 1");
  spec = linear_spec(16, 3, 2, 17);
  EXPECT_EQ(error_of(spec), "ranks: 17 ranks but only 16 layers: every rank needs at least one layer");
  spec = linear_spec(16, 2, 2, 1);
  spec.model.kind = "transformer";
  spec.model.d_model = 30;
  spec.model.heads = 4;
  EXPECT_EQ(error_of(spec), "model: d_model 30 is not divisible by heads 4");
  spec.model.heads = 0;
  EXPECT_EQ(error_of(spec), "model.heads: must be >= 1");
  spec = linear_spec(16, 2, 2, 1);
  spec.model.tstop = 0;
  EXPECT_EQ(error_of(spec), "model.tstop: must be > 0");
}

TEST(Build, PartitionIsAlignedToCoarsestIntervals) {
  const auto program = build_mgrit(linear_spec(100, 3, 3, 4));  // unit 9, 12 units
  ASSERT_EQ(program.partition.size(), 5u);
  EXPECT_EQ(program.partition.front(), 0);
  EXPECT_EQ(program.partition.back(), 100);
  for (std::size_t r = 1; r + 1 < program.partition.size(); ++r) EXPECT_EQ(program.partition[r] % 9, 0);
}

TEST(Build, MoreRanksThanCoarsestIntervalsCutAtFinerStrides) {
  const auto program = build_mgrit(linear_spec(64, 4, 2, 16));  // coarsest stride 8: only 8 intervals
  for (std::size_t r = 1; r + 1 < program.partition.size(); ++r) EXPECT_EQ(program.partition[r] % 4, 0);
  const auto one_layer_each = build_mgrit(linear_spec(16, 3, 2, 16));
  EXPECT_EQ(one_layer_each.partition, std::vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                                  14, 15, 16}));
}

TEST(Build, DepthsNotDivisibleByCfConvergeToSerial) {
  for (int layers : {17, 31, 50, 97}) {
    auto spec = linear_spec(layers, 3, 4, 2);
    spec.tolerance = 1e-12;
    spec.forward.iterations = spec.adjoint.iterations = 40;
    const auto report = solve_reference(build_mgrit(spec));
    EXPECT_LT(report.max_abs_error_vs_serial, 1e-10) << layers;
    EXPECT_LT(report.max_abs_gradient_error_vs_serial, 1e-10) << layers;
  }
}

TEST(Build, EveryBlockIsSteppedOnItsOwnersRank) {
  const auto program = build_mgrit(linear_spec(64, 3, 2, 4));
  for (int rank = 0; rank < program.ranks; ++rank) {
    for (const auto& section : program.rank_programs[rank].sections) {
      for (const auto& op : section.ops) {
        if (op.kind != OpKind::step && op.kind != OpKind::step_adjoint) continue;
        EXPECT_GE(op.block, program.partition[rank]);
        EXPECT_LT(op.block, program.partition[rank + 1]);
      }
    }
  }
}

TEST(Build, RepeatedIterationsAreStoredOnce) {
  auto spec = linear_spec(64, 2, 4, 2);
  spec.forward.iterations = 50;
  const auto program = build_mgrit(spec);
  const auto& sections = program.rank_programs[0].sections;
  const auto it = std::find_if(sections.begin(), sections.end(),
                               [](const Section& s) { return s.name == "forward.iteration"; });
  ASSERT_NE(it, sections.end());
  EXPECT_EQ(it->repeat, 48);  // the last iteration is a section of its own: it keeps graphs
  EXPECT_TRUE(it->iteration);
  EXPECT_EQ(std::next(it)->name, "forward.last_iteration");
  EXPECT_EQ(std::next(it)->repeat, 1);
  const auto summary = summarize(program);
  EXPECT_GT(summary.total_block_steps, 50 * 64);
}

TEST(Build, MessagesCarryStateBytes) {
  auto spec = linear_spec(32, 2, 2, 2);
  spec.model.kind = "transformer";
  spec.model.batch = 2;
  spec.model.seq = 16;
  spec.model.d_model = 32;
  spec.model.heads = 4;
  spec.model.dtype = "bf16";
  const auto program = build_mgrit(spec);
  for (const auto& section : program.rank_programs[0].sections) {
    for (const auto& op : section.ops) {
      if (op.kind == OpKind::send) {
        EXPECT_EQ(op.bytes, 2 * 16 * 32 * 2);
      }
    }
  }
}

}  // namespace
}  // namespace plait::schedule

namespace plait::schedule {
namespace {

std::int64_t count_graph_use(const Program& program, GraphUse use) {
  std::int64_t count = 0;
  for (const auto& rank : program.rank_programs)
    for (const auto& section : rank.sections)
      for (const auto& op : section.ops) count += section.repeat * (op.graph == use);
  return count;
}

BuildSpec transformer_spec(int layers, int ranks) {
  BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = 2, .coarsening_factor = 4, .relax = Relax::F, .iterations = 2};
  spec.adjoint = {.levels = 2, .coarsening_factor = 4, .relax = Relax::F, .iterations = 1};
  spec.model.d_model = 128;
  spec.model.heads = 4;
  spec.model.seq = 64;
  spec.model.batch = 8;
  return spec;
}

TEST(MemoryBudget, KeepsGraphsOnlyWithinTheBudget) {
  auto spec = transformer_spec(32, 2);
  const auto unlimited = build_mgrit(spec);
  const auto memory = estimate_memory(unlimited);
  EXPECT_EQ(count_graph_use(unlimited, GraphUse::keep), 24);  // F-point inputs of the last relaxation
  EXPECT_EQ(memory[0].kept_graphs, 12 * graph_bytes(spec.model));
  // Room for 5 graphs beyond what recomputing everything needs, on the larger rank.
  std::int64_t without_graphs = 0;
  for (const auto& rank : memory) without_graphs = std::max(without_graphs, rank.total() - rank.kept_graphs);
  spec.memory_budget_bytes = without_graphs + 5 * graph_bytes(spec.model);
  const auto budgeted = build_mgrit(spec);
  const std::int64_t kept = count_graph_use(budgeted, GraphUse::keep);
  EXPECT_GE(kept, 10);
  EXPECT_LT(kept, 24);
  for (const auto& rank : estimate_memory(budgeted)) EXPECT_LE(rank.total(), spec.memory_budget_bytes);
  // The adjoint recomputes, once per adjoint step there, what the forward no longer keeps.
  EXPECT_EQ(count_graph_use(budgeted, GraphUse::recompute),
            count_graph_use(unlimited, GraphUse::recompute) + (24 - kept));
  spec.memory_budget_bytes = 1 << 20;
  EXPECT_EQ(error_of(spec), "memory budget: rank 0 needs " + format_bytes(double(memory[0].total() - memory[0].kept_graphs)) +
                                " even recomputing every graph, over the budget of 1.0 MiB");
}

TEST(MemoryBudget, SerialKeepsEveryGraph) {
  const auto serial = build_serial(transformer_spec(16, 1));
  EXPECT_EQ(count_graph_use(serial, GraphUse::keep), 16);
  EXPECT_EQ(count_graph_use(serial, GraphUse::recompute), 0);
}

}  // namespace
}  // namespace plait::schedule
