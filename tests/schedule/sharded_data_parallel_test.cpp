// Sharded data parallelism (ZeRO stages 1-3, FSDP): what each stage does to a
// data-parallel Program's gradient sums, optimizer step and block steps, its
// JSON, and the validator's refusals (a collective without its partner, a
// buffer that does not split into the replicas' shards).
#include <algorithm>

#include <gtest/gtest.h>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::error_of;
using Builder = Program (*)(const BuildSpec&);

BuildSpec gpt_spec(int stage, int replicas) {
  BuildSpec spec = plait::testing::pipeline_spec(4, 2, 2);
  spec.model.vocab = 96;
  spec.model.batch = 12;
  spec.model.dtype = "fp16";
  spec.replicas = replicas;
  spec.zero_stage = stage;
  return spec;
}

std::vector<Op> ops_of(const Program& program, int rank, OpKind kind) {
  std::vector<Op> out;
  for (const Section& section : program.rank_programs[rank].sections)
    for (const Op& op : section.ops)
      if (op.kind == kind) out.push_back(op);
  return out;
}

std::string first_problem(const Program& program) {
  const auto problems = find_problems(program);
  return problems.empty() ? "" : problems.front().to_string();
}

TEST(ShardedDataParallel, StagesOneAndTwoShardTheUpdateAndGatherWhatTheySummed) {
  for (const int replicas : {2, 3}) {
    const Program plain = build_1f1b(gpt_spec(0, replicas));
    for (const int stage : {1, 2}) {
      SCOPED_TRACE("stage " + std::to_string(stage) + ", " + std::to_string(replicas) + " replicas");
      const Program program = build_1f1b(gpt_spec(stage, replicas));
      EXPECT_EQ(first_problem(program), "");
      EXPECT_EQ(program.zero_stage, stage);
      for (int rank = 0; rank < program.ranks; ++rank) {
        const auto sums = ops_of(plain, rank, OpKind::grad_allreduce);
        const auto sharded_sums = ops_of(program, rank, stage == 1 ? OpKind::grad_allreduce : OpKind::reduce_scatter);
        const auto gathers = ops_of(program, rank, OpKind::all_gather);
        ASSERT_EQ(sharded_sums.size(), sums.size());
        ASSERT_EQ(gathers.size(), sums.size());
        EXPECT_TRUE(ops_of(program, rank, stage == 1 ? OpKind::reduce_scatter : OpKind::grad_allreduce).empty());
        for (std::size_t i = 0; i < sums.size(); ++i) {
          // fp16: the whole buffer, padded to whole elements a replica.
          const std::int64_t padded = (sums[i].bytes / 2 + replicas - 1) / replicas * replicas * 2;
          EXPECT_EQ(sharded_sums[i].bytes, padded);
          EXPECT_EQ(gathers[i].bytes, padded);
          EXPECT_EQ(gathers[i].block, sums[i].block);
          EXPECT_EQ(gathers[i].span, sums[i].span);
        }
        const auto update = ops_of(program, rank, OpKind::update), whole = ops_of(plain, rank, OpKind::update);
        ASSERT_EQ(update.size(), 1u);
        EXPECT_EQ(update[0].bytes, (whole[0].bytes / 2 + replicas - 1) / replicas * 2);
        // The gathers follow the update: the last section.
        const Section& last = program.rank_programs[rank].sections.back();
        EXPECT_EQ(last.name, "parameter all-gather");
        EXPECT_EQ(last.ops.size(), gathers.size());
      }
    }
  }
}

TEST(ShardedDataParallel, StageThreeGathersEachBlockBeforeItsStepsAndScattersItsGradients) {
  for (const auto& [build, micro] : {std::pair<Builder, int>{&build_1f1b, 2}, {&build_gpipe, 2}, {&build_mgrit, 1}})
    for (const bool prefetch : {false, true}) {
      BuildSpec spec = gpt_spec(3, 2);
      spec.model.vocab = 0;
      spec.micro_batches = micro;
      spec.prefetch = prefetch;
      const Program program = build(spec);
      SCOPED_TRACE(program.kind + (prefetch ? " prefetch" : ""));
      EXPECT_EQ(first_problem(program), "");
      const std::int64_t block = gradient_bytes(program.model, 1);
      for (int rank = 0; rank < program.ranks; ++rank) {
        // A block step's block was gathered before it in its section, the
        // latest gather before it being of its block (a prefetched one may sit
        // one step earlier).
        for (const Section& section : program.rank_programs[rank].sections) {
          std::vector<std::int32_t> gathered;
          for (const Op& op : section.ops) {
            if (op.kind == OpKind::all_gather) {
              EXPECT_EQ(op.span, 1);
              EXPECT_EQ(op.bytes, block);  // 32 x 32 blocks: already a multiple of 2 elements
              EXPECT_EQ(op.overlap, prefetch && !gathered.empty());
              gathered.push_back(op.block);
            }
            if (!is_block_step(op.kind)) continue;
            ASSERT_FALSE(gathered.empty()) << section.name;
            const auto last_two = gathered.end() - std::min<std::ptrdiff_t>(prefetch ? 2 : 1, gathered.size());
            EXPECT_NE(std::find(last_two, gathered.end(), op.block), gathered.end()) << section.name;
          }
        }
        // Every trained block's gradients reduce-scattered once, on its own.
        std::vector<std::int32_t> scattered;
        for (const Op& op : ops_of(program, rank, OpKind::reduce_scatter)) {
          EXPECT_EQ(op.span, 1);
          EXPECT_EQ(op.bytes, block);
          scattered.push_back(op.block);
        }
        std::sort(scattered.begin(), scattered.end());
        std::vector<std::int32_t> owned;
        for (const BlockRange& chunk : trained_blocks(program, rank))
          for (std::int32_t b = chunk.first; b < chunk.end; ++b) owned.push_back(b);
        EXPECT_EQ(scattered, owned);
        EXPECT_TRUE(ops_of(program, rank, OpKind::grad_allreduce).empty());
      }
    }
}

TEST(ShardedDataParallel, TheOpsSurviveJson) {
  BuildSpec spec = gpt_spec(3, 2);
  spec.prefetch = true;
  const Program program = build_1f1b(spec);
  EXPECT_EQ(parse_program(dump_program(program)), program);
}

TEST(ShardedDataParallel, TheValidatorRefusesAGatherWithoutItsPartnerOrShardsThatDoNotSplit) {
  const Program program = build_1f1b(gpt_spec(2, 2));
  Program lonely = program;
  auto& ops = lonely.rank_programs[0].sections.back().ops;
  ASSERT_EQ(ops.at(0).kind, OpKind::all_gather);
  ops.erase(ops.begin());
  EXPECT_NE(first_problem(lonely).find("waits forever in a collective"), std::string::npos) << first_problem(lonely);

  Program uneven = program;
  for (RankProgram& rank : uneven.rank_programs) rank.sections.back().ops.at(0).bytes += 1;
  EXPECT_NE(first_problem(uneven).find("does not split into 2 equal shards"), std::string::npos)
      << first_problem(uneven);

  Program mismatched = program;
  mismatched.rank_programs[0].sections.back().ops.at(0).bytes += 2;
  EXPECT_NE(first_problem(mismatched).find("meets rank"), std::string::npos) << first_problem(mismatched);

  Program unsharded = program;
  unsharded.zero_stage = 0;
  EXPECT_NE(first_problem(unsharded).find("needs zero_stage >= 1"), std::string::npos) << first_problem(unsharded);
}

TEST(ShardedDataParallel, BadSettingsAreOneLineErrors) {
  EXPECT_NE(error_of([] { build_1f1b(gpt_spec(2, 1)); }).find("needs --dp >= 2"), std::string::npos);
  EXPECT_NE(error_of([] { build_1f1b(gpt_spec(4, 2)); }).find("must be 1, 2 or 3"), std::string::npos);
  BuildSpec prefetch = gpt_spec(2, 2);
  prefetch.prefetch = true;
  EXPECT_NE(error_of([&] { build_1f1b(prefetch); }).find("needs --zero 3"), std::string::npos);
  BuildSpec per_tensor = gpt_spec(1, 2);
  per_tensor.model.vocab = 0;
  per_tensor.dp_per_tensor = true;
  EXPECT_NE(error_of([&] { build_mgrit(per_tensor); }).find("not sharded"), std::string::npos);
}

}  // namespace
}  // namespace plait::schedule
