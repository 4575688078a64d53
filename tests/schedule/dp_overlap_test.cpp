// Overlapped data parallelism (--dp-overlap): gradient buckets summed right
// after the step that finishes them, each trained block once, contiguous and
// within the bucket size; JSON keeps the flag; the validator refuses it elsewhere.
#include <gtest/gtest.h>

#include <map>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::pipeline_spec;

BuildSpec overlap_spec(int layers, int stages, std::int64_t bucket_blocks) {
  BuildSpec spec = pipeline_spec(layers, stages, 2);
  spec.replicas = 2;
  spec.dp_overlap = true;
  spec.bucket_bytes = bucket_blocks * gradient_bytes(micro_batch_model(build_1f1b(pipeline_spec(layers, stages, 2))), 1);
  return spec;
}

TEST(DataParallelOverlap, EachBucketFollowsTheStepThatFinishesItsGradients) {
  for (const std::string& kind : {std::string("gpipe"), std::string("1f1b"), std::string("zb-h1")})
    for (const std::int64_t bucket_blocks : {1, 2, 8}) {
      const Program program = build_kind(kind, overlap_spec(8, 2, bucket_blocks));
      SCOPED_TRACE(kind + ", buckets of " + std::to_string(bucket_blocks) + " blocks");
      ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
      for (int rank = 0; rank < program.ranks; ++rank) {
        std::map<std::int32_t, int> summed;
        const std::vector<Op>& ops = program.rank_programs[rank].sections.back().ops;
        ASSERT_EQ(program.rank_programs[rank].sections.size(), 1u);  // no section at the end
        for (std::size_t i = 0; i < ops.size(); ++i) {
          if (ops[i].kind != OpKind::grad_allreduce) continue;
          EXPECT_TRUE(ops[i].overlap);
          EXPECT_LE(ops[i].span, bucket_blocks);
          EXPECT_EQ(ops[i].bytes, ops[i].span * gradient_bytes(micro_batch_model(program), 1));
          for (int block = ops[i].block; block < ops[i].block + ops[i].span; ++block) {
            ++summed[block];
            for (std::size_t later = i + 1; later < ops.size(); ++later)  // final: no gradient op after it
              EXPECT_FALSE(adds_to_gradient(ops[later]) && ops[later].block == block) << "block " << block;
          }
          // ... and it follows the op that finished one of them.
          ASSERT_GT(i, 0u);
          EXPECT_TRUE(adds_to_gradient(ops[i - 1]) || ops[i - 1].kind == OpKind::grad_allreduce);
        }
        for (const BlockRange& chunk : owned_blocks(program, rank))
          for (int block = chunk.first; block < chunk.end; ++block) EXPECT_EQ(summed[block], 1) << "block " << block;
      }
    }
}

TEST(DataParallelOverlap, MgritSumsAfterItsGradientSweep) {
  BuildSpec spec = overlap_spec(8, 2, 2);
  spec.micro_batches = 1;
  const Program program = build_mgrit(spec);
  ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  int sums = 0;
  for (const RankProgram& rank : program.rank_programs)
    for (const Section& section : rank.sections)
      for (const Op& op : section.ops)
        if (op.kind == OpKind::grad_allreduce) {
          EXPECT_TRUE(op.overlap);
          EXPECT_EQ(section.repeat, 1);
          sums += op.span;
        }
  EXPECT_EQ(sums, 8 * 2);  // every block in both replicas
}

TEST(DataParallelOverlap, RoundTripsThroughJsonAndOnlyGradientSumsOverlap) {
  Program program = build_1f1b(overlap_spec(4, 2, 1));
  EXPECT_EQ(parse_program(dump_program(program)), program);
  EXPECT_NE(dump_program(program).find("\"overlap\":true"), std::string::npos);
  program.rank_programs[0].sections[0].ops[0].overlap = true;  // the input op
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().to_string().find("input cannot overlap (only a grad_allreduce, reduce_scatter or all_gather does)"), std::string::npos)
      << problems.front().to_string();
  EXPECT_EQ(plait::testing::error_of([] {
              BuildSpec spec = overlap_spec(4, 2, 1);
              spec.bucket_bytes = 0;
              build_1f1b(spec);
            }),
            "bucket-bytes: must be >= 1");
}

}  // namespace
}  // namespace plait::schedule
