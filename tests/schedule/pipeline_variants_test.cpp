// Interleaved 1F1B, zero-bubble H1 and activation checkpointing: valid Programs doing the
// serial work, chunks on stages round robin, the recompute's graphs, and
// one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::pipeline_spec;

BuildSpec interleaved_spec(int layers, int stages, int micro_batches, int virtual_stages) {
  BuildSpec spec = pipeline_spec(layers, stages, micro_batches);
  spec.model.batch = 24;
  spec.virtual_stages = virtual_stages;
  return spec;
}

TEST(InterleavedPipeline, EveryChunkRunsEveryMicroBatchOnItsStage) {
  for (int stages = 1; stages <= 4; ++stages)
    for (int virtual_stages : {2, 3})
      for (int micro : {stages, 2 * stages}) {
        if (24 % micro != 0) continue;
        const Program program = build_1f1b_interleaved(interleaved_spec(13, stages, micro, virtual_stages));
        SCOPED_TRACE("P" + std::to_string(stages) + " v" + std::to_string(virtual_stages) + " M" + std::to_string(micro));
        EXPECT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
        EXPECT_EQ(program.partition.size(), std::size_t(stages * virtual_stages + 1));
        for (int stage = 0; stage < stages; ++stage) {
          const auto chunks = owned_blocks(program, stage);
          ASSERT_EQ(chunks.size(), std::size_t(virtual_stages));
          std::map<std::int32_t, int> forwards, backwards;  // by block
          for (const Op& op : program.rank_programs[stage].sections[0].ops) {
            if (op.kind == OpKind::step) ++forwards[op.block];
            if (op.kind == OpKind::step_adjoint && op.accumulate_grad && op.graph == GraphUse::release) ++backwards[op.block];
          }
          for (int v = 0; v < virtual_stages; ++v) {
            EXPECT_EQ(chunks[v].first, program.partition[v * stages + stage]);
            for (int block = chunks[v].first; block < chunks[v].end; ++block) {
              EXPECT_EQ(forwards[block], micro) << "block " << block;
              EXPECT_EQ(backwards[block], micro) << "block " << block;
            }
          }
        }
      }
}

TEST(InterleavedPipeline, DataParallelReplicasSumEveryChunk) {
  BuildSpec spec = interleaved_spec(8, 2, 2, 2);
  spec.replicas = 2;
  const Program program = build_1f1b_interleaved(spec);
  EXPECT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  const auto& sum = program.rank_programs[3].sections.back().ops;  // stage 1 of replica 1: chunks 1 and 3
  ASSERT_EQ(sum.size(), 2u);
  EXPECT_EQ(sum[0].block, 2);
  EXPECT_EQ(sum[1].block, 6);
}

TEST(Recompute, PipelinesKeepNoGraphAndRecomputeEachBackwardStep) {
  BuildSpec spec = pipeline_spec(8, 2, 4);
  const auto kept = estimate_memory(build_gpipe(spec));
  spec.recompute = true;
  for (const Program& program : {build_gpipe(spec), build_1f1b(spec)}) {
    SCOPED_TRACE(program.kind);
    EXPECT_TRUE(find_problems(program).empty());
    for (const RankProgram& rank : program.rank_programs)
      for (const Op& op : rank.sections[0].ops) {
        if (op.kind == OpKind::step) {
          EXPECT_EQ(op.graph, GraphUse::none);
        }
        if (op.kind == OpKind::step_adjoint) {
          EXPECT_EQ(op.graph, GraphUse::recompute);
        }
      }
    const auto memory = estimate_memory(program);
    for (std::size_t rank = 0; rank < memory.size(); ++rank) {
      EXPECT_EQ(memory[rank].kept_graphs, 0);
      EXPECT_EQ(memory[rank].recompute, graph_bytes(micro_batch_model(program)));
      EXPECT_LT(memory[rank].total(), kept[rank].total());
    }
  }
}

TEST(Recompute, MgritKeepsNoGraph) {
  BuildSpec spec = pipeline_spec(8, 2, 1);
  spec.recompute = true;
  const Program program = build_mgrit(spec);
  for (const RankProgram& rank : program.rank_programs)
    for (const Section& section : rank.sections)
      for (const Op& op : section.ops) EXPECT_NE(op.graph, GraphUse::keep);
  for (const RankMemory& memory : estimate_memory(program)) EXPECT_EQ(memory.kept_graphs, 0);
}

TEST(ZeroBubble, SplitBackwardsDoTheSerialWorkWithinOneFOneBsPeakMemory) {
  for (int stages = 1; stages <= 4; ++stages)
    for (int micro : {1, 2, 4, 8}) {
      const BuildSpec spec = pipeline_spec(2 * stages, stages, micro);
      const Program program = build_zb_h1(spec);
      SCOPED_TRACE("P" + std::to_string(stages) + " M" + std::to_string(micro));
      EXPECT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
      std::int64_t one_f_one_b_peak = 0;
      for (const RankMemory& memory : estimate_memory(build_1f1b(spec)))
        one_f_one_b_peak = std::max(one_f_one_b_peak, memory.kept_graphs);
      const auto memory = estimate_memory(program);
      for (int stage = 0; stage < stages; ++stage) {
        EXPECT_LE(memory[stage].kept_graphs, one_f_one_b_peak);
        int input_halves = 0, weight_halves = 0;
        for (const Op& op : program.rank_programs[stage].sections[0].ops) {
          input_halves += op.kind == OpKind::step_adjoint && !op.accumulate_grad && op.graph == GraphUse::none;
          weight_halves += op.kind == OpKind::step_weight && op.graph == GraphUse::release;
        }
        EXPECT_EQ(input_halves, 2 * micro);  // two blocks a stage
        EXPECT_EQ(weight_halves, 2 * micro);
      }
    }
  EXPECT_EQ(plait::testing::error_of([] {
              BuildSpec spec = pipeline_spec(4, 2, 2);
              spec.recompute = true;
              build_zb_h1(spec);
            }),
            "recompute: zb-h1 splits the backward on kept graphs: it does not recompute");
}

TEST(BuildKind, NamesEveryKindAndRefusesAnother) {
  const BuildSpec spec = pipeline_spec(4, 2, 2);
  for (const std::string& kind : pipeline_kinds()) {
    EXPECT_TRUE(is_pipeline_kind(kind));
    EXPECT_EQ(build_kind(kind, spec).kind, kind);
  }
  EXPECT_FALSE(is_pipeline_kind("mgrit"));
  EXPECT_EQ(pipeline_kind_list(), "gpipe, 1f1b, 1f1b-interleaved, zb-h1");
  EXPECT_EQ(plait::testing::error_of([&] { build_kind("pipedream", spec); }),
            "kind: unknown kind \"pipedream\" (mgrit, serial, gpipe, 1f1b, 1f1b-interleaved, zb-h1)");
}

TEST(InterleavedPipeline, BadSettingsAreOneLineErrors) {
  const auto error_of = [](const BuildSpec& spec) {
    return plait::testing::error_of([&] { build_1f1b_interleaved(spec); });
  };
  EXPECT_EQ(error_of(interleaved_spec(8, 2, 3, 2)),
            "micro-batches: 3 is not a multiple of the 2 stages (interleaved 1F1B runs them P at a time)");
  EXPECT_EQ(error_of(interleaved_spec(5, 2, 2, 3)),
            "stages: 2 stages x 3 virtual stages but only 5 layers: every stage needs at least one layer");
  BuildSpec one = interleaved_spec(8, 2, 2, 2);
  EXPECT_EQ(plait::testing::error_of([&] { build_1f1b(one); }),
            "virtual-stages: only the interleaved 1F1B (1f1b-interleaved) splits a stage, not 1f1b");
}

}  // namespace
}  // namespace plait::schedule
