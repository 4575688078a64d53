// Frozen blocks (PipeTransformer): forward only on the frozen blocks, stages
// balanced by work, the trained blocks' gradients those of the serial step,
// the re-pack onto fewer stages and more replicas, and one-line errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/reference.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::pipeline_spec;

BuildSpec frozen_spec(int layers, int stages, int micro_batches, int frozen) {
  BuildSpec spec = pipeline_spec(layers, stages, micro_batches);
  spec.frozen_blocks = frozen;
  return spec;
}

TEST(Freeze, FrozenBlocksRunForwardOnlyAndNoGradientTouchesThem) {
  for (const std::string& kind : pipeline_kinds())
    for (int frozen : {1, 5, 7}) {
      BuildSpec spec = frozen_spec(8, 2, 2, frozen);
      spec.replicas = 2;
      if (kind == "1f1b-interleaved") spec.virtual_stages = 2;
      const Program program = build_kind(kind, spec);
      SCOPED_TRACE(kind + ", " + std::to_string(frozen) + " frozen");
      ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
      EXPECT_EQ(program.frozen_blocks, frozen);
      std::vector<int> forwards(8), backwards(8), summed(8);
      for (const RankProgram& rank : program.rank_programs)
        for (const Section& section : rank.sections)
          for (const Op& op : section.ops) {
            if (op.kind == OpKind::step) {
              ++forwards[op.block];
              EXPECT_EQ(op.graph == GraphUse::keep, op.block >= frozen) << "block " << op.block;
            }
            if (op.kind == OpKind::step_adjoint) ++backwards[op.block];
            if (op.kind == OpKind::grad_allreduce)
              for (int block = op.block; block < op.block + op.span; ++block) ++summed[block];
          }
      for (int block = 0; block < 8; ++block) {
        EXPECT_EQ(forwards[block], 4) << "block " << block;  // 2 micro-batches x 2 replicas
        EXPECT_EQ(backwards[block], block < frozen ? 0 : 4) << "block " << block;
        EXPECT_EQ(summed[block], block < frozen ? 0 : 2) << "block " << block;
      }
    }
}

TEST(Freeze, TrainedBlocksGetTheSerialGradients) {
  BuildSpec spec;
  spec.layers = 9;
  spec.model.kind = "mlp";
  spec.model.width = 3;
  const ReferenceModel model(spec.model, spec.layers);
  const SerialSolution serial = solve_serial(model);
  for (int stages : {1, 2, 3}) {
    BuildSpec frozen = spec;
    frozen.ranks = stages;
    frozen.frozen_blocks = 4;
    const ReferenceRun run = run_reference(build_1f1b(frozen), model);
    SCOPED_TRACE(std::to_string(stages) + " stages");
    for (int block = 0; block < spec.layers; ++block) {
      const auto& gradient = run.gradients[block];
      for (std::size_t i = 0; i < gradient.size(); ++i)
        EXPECT_NEAR(gradient[i], block < 4 ? 0.0 : serial.gradients[block][i], 1e-14) << "block " << block;
    }
    EXPECT_NEAR(run.loss, serial.loss, 1e-14);
  }
}

TEST(Freeze, StagesAreBalancedByWork) {
  // 16 blocks, 8 frozen (a third of a trained block's work each): 32 units over
  // 4 stages, 8 a stage: the 8 frozen blocks, then 2, 3, 3 trained ones.
  const Program program = build_1f1b(frozen_spec(16, 4, 4, 8));
  EXPECT_EQ(program.partition, (std::vector<std::int32_t>{0, 8, 10, 13, 16}));
  // Nothing frozen: the even split.
  EXPECT_EQ(build_1f1b(frozen_spec(10, 4, 4, 0)).partition, (std::vector<std::int32_t>{0, 2, 5, 7, 10}));
  // Every stage keeps a block however skewed the work.
  EXPECT_EQ(build_1f1b(frozen_spec(4, 4, 4, 3)).partition, (std::vector<std::int32_t>{0, 1, 2, 3, 4}));
}

TEST(Freeze, MemoryHoldsNoGradientsOrGraphsOfFrozenBlocks) {
  const Program program = build_gpipe(frozen_spec(8, 2, 2, 6));  // stage 0: blocks 0-5, stage 1: 6-7
  const auto memory = estimate_memory(program, 2);
  const std::int64_t block = block_parameter_count(micro_batch_model(program)) * 4;
  EXPECT_EQ(memory[0].parameters, program.partition[1] * block);
  EXPECT_EQ(memory[0].gradients, std::max(0, program.partition[1] - 6) * block);
  EXPECT_EQ(memory[0].optimizer, 2 * memory[0].gradients);
  EXPECT_EQ(memory[1].gradients, memory[1].parameters);
  if (program.partition[1] <= 6) EXPECT_EQ(memory[0].kept_graphs, 0);
}

TEST(Freeze, RepackMovesFreedStagesIntoReplicas) {
  BuildSpec spec = frozen_spec(16, 4, 2, 0);
  spec.repack = true;
  spec.replicas = 2;
  // Units: 3 a trained block, 1 a frozen one; an unfrozen stage holds 12.
  // 8 frozen: 32 units, 16 a stage on 2 stages: too many; 12 frozen: 24, 12 a stage.
  for (const auto& [frozen, stages] : {std::pair{0, 4}, {4, 4}, {8, 4}, {10, 4}, {12, 2}, {15, 2}}) {
    spec.frozen_blocks = frozen;
    const Program program = build_kind("1f1b", spec);
    SCOPED_TRACE(std::to_string(frozen) + " frozen");
    EXPECT_EQ(program.ranks, 8);
    EXPECT_EQ(program.replicas, 8 / stages);
    EXPECT_TRUE(find_problems(program).empty());
  }
  // 4 replicas x 2 micro-batches do not split a batch of 4: no re-pack.
  spec.frozen_blocks = 12;
  spec.model.batch = 4;
  EXPECT_EQ(build_kind("1f1b", spec).replicas, 2);
}

TEST(Freeze, BadSettingsAreOneLineErrors) {
  EXPECT_EQ(plait::testing::error_of([] { build_1f1b(frozen_spec(8, 2, 2, 8)); }),
            "frozen: 8 frozen blocks of 8: must be in 0..7 (one block at least trains)");
  EXPECT_EQ(plait::testing::error_of([] { build_1f1b(frozen_spec(8, 2, 2, -1)); }),
            "frozen: -1 frozen blocks of 8: must be in 0..7 (one block at least trains)");
  EXPECT_EQ(plait::testing::error_of([] { build_mgrit(frozen_spec(8, 2, 1, 2)); }),
            "frozen: mgrit solves over every layer: only the pipelines (gpipe, 1f1b, 1f1b-interleaved, zb-h1) "
            "freeze blocks");
  Program program = build_1f1b(frozen_spec(8, 2, 2, 0));
  program.frozen_blocks = 3;  // the ops still train blocks 0-2
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().to_string().find("of the 3 frozen blocks (they have no gradients)"), std::string::npos)
      << problems.front().to_string();
}

}  // namespace
}  // namespace plait::schedule
