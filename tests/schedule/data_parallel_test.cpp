// Data parallelism over MGRIT and the pipelines: replicas on consecutive
// ranks, each with the one-replica Program's ops on its share of the batch,
// one grad_allreduce per rank over its position's ranks, memory per rank
// against the one-replica estimate, JSON, and one-line errors.
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/summary.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::pipeline_spec;
using Builder = Program (*)(const BuildSpec&);

BuildSpec spec_of(int layers, int ranks, int micro_batches) {
  BuildSpec spec = pipeline_spec(layers, ranks, micro_batches);
  spec.model.batch = 12;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 2};
  return spec;
}

TEST(DataParallel, ReplicasRunTheOneReplicaOpsOnTheirOwnRanksAndSumTheirGradients) {
  for (const auto& [build, micro] : {std::pair<Builder, int>{&build_mgrit, 1}, {&build_gpipe, 2}, {&build_1f1b, 2}})
    for (const int replicas : {2, 3}) {
      BuildSpec spec = spec_of(6, 2, micro);
      BuildSpec one = spec;
      one.model.batch /= replicas;
      const Program single = build(one);
      spec.replicas = replicas;
      const Program program = build(spec);
      SCOPED_TRACE(program.kind + " x" + std::to_string(replicas));
      EXPECT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
      EXPECT_EQ(program.ranks, 2 * replicas);
      EXPECT_EQ(program.replicas, replicas);
      EXPECT_EQ(program.model.batch, 12);  // the serial baseline's batch
      EXPECT_EQ(micro_batch_model(program).batch, 12 / replicas / micro);
      EXPECT_EQ(program.partition, single.partition);
      const auto memory = estimate_memory(program), single_memory = estimate_memory(single);
      for (int rank = 0; rank < program.ranks; ++rank) {
        const int position = rank % 2, replica = rank / 2;
        EXPECT_EQ(replica_of(program, rank), replica);
        const auto& sections = program.rank_programs[rank].sections;
        ASSERT_EQ(sections.size(), single.rank_programs[position].sections.size() + 1);
        for (std::size_t s = 0; s + 1 < sections.size(); ++s)
          for (std::size_t i = 0; i < sections[s].ops.size(); ++i) {
            Op expected = single.rank_programs[position].sections[s].ops[i];
            if (expected.kind == OpKind::send || expected.kind == OpKind::recv) expected.peer += 2 * replica;
            ASSERT_EQ(sections[s].ops[i], expected) << "rank " << rank << " section " << s << " op " << i;
          }
        const Op& sum = sections.back().ops.at(0);
        ASSERT_EQ(owned_blocks(program, rank).size(), 1u);
        const BlockRange owned = owned_blocks(program, rank).front();
        EXPECT_EQ(sum.kind, OpKind::grad_allreduce);
        EXPECT_EQ(sum.block, owned.first);
        EXPECT_EQ(sum.span, owned.end - owned.first);
        EXPECT_EQ(sum.bytes, gradient_bytes(program.model, sum.span));
        std::vector<int> position_ranks, replica_ranks{2 * replica, 2 * replica + 1};
        for (int r = 0; r < replicas; ++r) position_ranks.push_back(2 * r + position);
        EXPECT_EQ(collective_group(program, rank, OpKind::grad_allreduce), position_ranks);
        EXPECT_EQ(collective_group(program, rank, OpKind::allreduce), replica_ranks);
        // A replica's rank holds what the one-replica Program's does at its share of the batch.
        EXPECT_EQ(memory[rank].total(), single_memory[position].total());
      }
    }
}

TEST(DataParallel, InspectCountsTheOptimizerStateOfEachReplicasRanks) {
  BuildSpec spec = spec_of(6, 2, 2);
  spec.replicas = 2;
  const Program program = build_1f1b(spec);
  const ProgramSummary plain = summarize(program), adamw = summarize(program, 2);
  for (std::size_t rank = 0; rank < plain.ranks.size(); ++rank) {
    const RankMemory &without = plain.ranks[rank].memory, &with = adamw.ranks[rank].memory;
    EXPECT_EQ(without.optimizer, 0);
    EXPECT_EQ(with.optimizer, 2 * with.parameters);
    EXPECT_EQ(with.total(), without.total() + 2 * without.parameters);
  }
  EXPECT_NE(format_summary(program, adamw).find("optimizer"), std::string::npos);
}

TEST(DataParallel, ProgramsRoundTripThroughJson) {
  BuildSpec spec = spec_of(4, 2, 2);
  spec.replicas = 2;
  const Program program = build_1f1b(spec);
  EXPECT_EQ(parse_program(dump_program(program), "dp.json"), program);
  EXPECT_NE(dump_program(program).find("\"replicas\":2"), std::string::npos);
  EXPECT_NE(dump_program(program).find("{\"op\":\"grad_allreduce\",\"block\":2,\"span\":2,\"bytes\":"),
            std::string::npos);
}

TEST(DataParallel, ValidationRefusesBadReplicasAndGradientRanges) {
  BuildSpec spec = spec_of(4, 2, 2);
  spec.replicas = 2;
  Program program = build_gpipe(spec);
  program.replicas = 3;  // does not divide 4 ranks
  EXPECT_EQ(find_problems(program).front().to_string(), "replicas 3 must be >= 1 and divide the 4 ranks");
  program = build_gpipe(spec);
  program.rank_programs[1].sections.back().ops[0].span = 3;  // blocks 2..4 of 4
  EXPECT_EQ(find_problems(program).front().to_string(),
            "rank 1, section gradient allreduce, op 0: grad_allreduce of blocks 2 + 3 outside the 4 layers");
  program = build_gpipe(spec);
  program.rank_programs[3].sections.pop_back();  // rank 1 waits for rank 3 forever
  EXPECT_EQ(find_problems(program).front().to_string(),
            "rank 1, section gradient allreduce, op 0: waits forever in a collective (1 of 2 ranks of its group arrive)");
}

TEST(DataParallel, BadSettingsAreOneLineErrors) {
  BuildSpec spec = spec_of(4, 2, 2);
  spec.replicas = 5;
  EXPECT_EQ(plait::testing::error_of([&] { build_1f1b(spec); }),
            "dp: 5 replicas x 2 micro-batches do not divide the batch of 12");
  spec.replicas = 0;
  EXPECT_EQ(plait::testing::error_of([&] { build_mgrit(spec); }), "dp: must be in 1..16777216");
  spec.replicas = 2;
  spec.model.kind = "linear";
  EXPECT_EQ(plait::testing::error_of([&] { build_mgrit(spec); }), "dp: a linear model has no batch to split");
}

}  // namespace
}  // namespace plait::schedule
