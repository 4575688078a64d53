// Tensor parallelism and the full GPT step in the IR: the rank layout
// (tensor-parallel first, then pipeline, then data parallel), messages and
// gradient sums of a shard, the activation all-reduces per op, the update
// ops, memory per rank against closed forms, and one-line errors.
#include <gtest/gtest.h>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::error_of;

// A small GPT: d 32, 4 heads, MLP 2x, sequence 8, batch 8, vocabulary 64.
BuildSpec gpt_spec(int layers, int stages, int micro_batches, int tp, int dp) {
  BuildSpec spec = plait::testing::pipeline_spec(layers, stages, micro_batches);
  spec.replicas = dp;
  spec.recompute = true;
  spec.model.tensor_parallel = tp;
  spec.model.vocab = 64;
  return spec;
}

// Parameters of one block on one of `tp` shards, written out: LayerNorms and
// the row-split layers' biases whole, the rest split.
std::int64_t shard_block_parameters(std::int64_t d, std::int64_t hidden, std::int64_t tp) {
  return 4 * d + (3 * d * d + 3 * d) / tp + d * d / tp + d + (hidden * d + hidden) / tp + d * hidden / tp + d;
}

TEST(TensorParallel, RanksAreTensorParallelFirstThenStagesThenReplicas) {
  const Program program = build_1f1b(gpt_spec(4, 2, 2, 2, 2));
  ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  ASSERT_EQ(program.ranks, 8);
  for (int rank = 0; rank < 8; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    const int stage = rank / 2 % 2;
    EXPECT_EQ(owned_blocks(program, rank), (std::vector<BlockRange>{{2 * stage, 2 * stage + 2}}));
    EXPECT_EQ(tensor_group(program, rank), (std::vector<int>{rank / 2 * 2, rank / 2 * 2 + 1}));
    // Gradients are summed with the same shard of the same stage in the other replica.
    EXPECT_EQ(collective_group(program, rank, OpKind::grad_allreduce), (std::vector<int>{rank % 4, rank % 4 + 4}));
    for (const Section& section : program.rank_programs[rank].sections)
      for (const Op& op : section.ops)
        if (op.kind == OpKind::send || op.kind == OpKind::recv) {
          EXPECT_EQ(op.peer % 2, rank % 2) << "a message goes to the same shard";
          EXPECT_EQ(op.peer / 4, rank / 4) << "within the replica";
          // A micro-batch of 8 / (2 x 2) samples, half of its state.
          EXPECT_EQ(op.bytes, 2 * 8 * 32 * 4 / 2);
        }
  }
}

TEST(TensorParallel, EachOpTakesItsActivationAllReduces) {
  const Program program = build_1f1b(gpt_spec(4, 2, 2, 2, 1));
  int forward = 0, backward = 0, input = 0, loss = 0;
  for (const Section& section : program.rank_programs[0].sections)
    for (const Op& op : section.ops) {
      const int count = tensor_allreduces(program, op);
      const int expected = op.kind == OpKind::step           ? 2
                           : op.kind == OpKind::step_adjoint ? 4  // recomputed: the forward's two again
                           : op.kind == OpKind::input        ? 1
                                                             : 0;
      EXPECT_EQ(count, expected) << to_string(op.kind);
      forward += op.kind == OpKind::step;
      backward += op.kind == OpKind::step_adjoint;
      input += op.kind == OpKind::input;
      loss += op.kind == OpKind::loss;
    }
  EXPECT_EQ(forward, 2 * 2);  // 2 blocks x 2 micro-batches on the first stage
  EXPECT_EQ(backward, 2 * 2);
  EXPECT_EQ(input, 2);
  EXPECT_EQ(loss, 0);  // on the last stage
  // A split backward: the input half all-reduces, the weight half does not.
  BuildSpec zb = gpt_spec(4, 2, 2, 2, 1);
  zb.recompute = false;
  const Program split = build_zb_h1(zb);
  for (const Op& op : split.rank_programs[0].sections.front().ops) {
    if (op.kind == OpKind::step_adjoint) EXPECT_EQ(tensor_allreduces(split, op), 2);
    if (op.kind == OpKind::step_weight) EXPECT_EQ(tensor_allreduces(split, op), 0);
  }
  // Without tensor parallelism nothing is all-reduced.
  const Program plain = build_1f1b(gpt_spec(4, 2, 2, 1, 1));
  for (const Op& op : plain.rank_programs[0].sections.front().ops) EXPECT_EQ(tensor_allreduces(plain, op), 0);
}

TEST(TensorParallel, AShardSumsAndUpdatesItsOwnParameters) {
  const BuildSpec spec = gpt_spec(4, 2, 2, 2, 2);
  const Program program = build_1f1b(spec);
  const std::int64_t e = 4, d = 32, block = shard_block_parameters(d, 64, 2) * e;
  const std::int64_t word = 64 / 2 * d * e, position = 8 * d * e, final_norm = 2 * d * e;
  for (int rank = 0; rank < program.ranks; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    const bool first = rank / 2 % 2 == 0;
    const std::int64_t ends = first ? word + position : word + final_norm;
    std::int64_t summed = 0, updated = 0;
    for (const Section& section : program.rank_programs[rank].sections)
      for (const Op& op : section.ops) {
        if (op.kind == OpKind::grad_allreduce) summed += op.bytes;
        if (op.kind == OpKind::update) updated += op.bytes;
      }
    EXPECT_EQ(summed, 2 * block + ends);
    EXPECT_EQ(updated, 2 * block + ends);
    EXPECT_EQ(program.rank_programs[rank].sections.back().ops.back().kind, OpKind::update);
    const RankMemory memory = estimate_memory(program, 2)[rank];
    EXPECT_EQ(memory.parameters, 2 * block + ends);
    EXPECT_EQ(memory.gradients, 2 * block + ends);
    // fp32: Adam's two moments, no separate master weights.
    EXPECT_EQ(memory.optimizer, 2 * (2 * block + ends));
    EXPECT_EQ(memory.kept_graphs, 0) << "activation checkpointing keeps no graph";
  }
  // fp16: fp32 master weights and moments, 12 bytes a parameter.
  BuildSpec half = spec;
  half.model.dtype = "fp16";
  const Program fp16 = build_1f1b(half);
  const RankMemory memory = estimate_memory(fp16, 2)[0];
  EXPECT_EQ(memory.optimizer, memory.parameters / 2 * 12);
}

// With the gradients summed in buckets amid the backward (DDP), the ends'
// gradients are final only at the rank's last sum: they join that one.
TEST(TensorParallel, TheEndsJoinTheRanksLastGradientSum) {
  BuildSpec spec = gpt_spec(4, 2, 2, 1, 2);
  spec.dp_overlap = true;
  spec.bucket_bytes = 1;  // a block a bucket
  const Program program = build_1f1b(spec);
  const std::int64_t block = shard_block_parameters(32, 64, 1) * 4;
  for (int rank = 0; rank < program.ranks; ++rank) {
    std::vector<std::int64_t> sums;
    for (const Section& section : program.rank_programs[rank].sections)
      for (const Op& op : section.ops)
        if (op.kind == OpKind::grad_allreduce) sums.push_back(op.bytes - op.span * block);
    ASSERT_EQ(sums.size(), 2u) << "rank " << rank;
    EXPECT_EQ(sums, (std::vector<std::int64_t>{0, end_parameter_bytes(program, rank)})) << "rank " << rank;
  }
}

TEST(TensorParallel, OneStageHoldsBothEndsOnce) {
  const Program program = build_1f1b(gpt_spec(4, 1, 2, 1, 1));
  EXPECT_EQ(end_parameter_bytes(program, 0), (64 * 32 + 8 * 32 + 2 * 32) * 4);
}

TEST(TensorParallel, BadSettingsAreOneLineErrors) {
  BuildSpec spec = gpt_spec(4, 2, 2, 3, 1);
  EXPECT_EQ(error_of([&] { build_1f1b(spec); }), "tp: heads 4 is not divisible by 3 tensor-parallel ranks");
  spec = gpt_spec(4, 2, 2, 2, 1);
  spec.model.vocab = 63;
  EXPECT_EQ(error_of([&] { build_1f1b(spec); }), "tp: vocabulary 63 is not divisible by 2 tensor-parallel ranks");
  Program program = build_1f1b(gpt_spec(4, 2, 2, 2, 1));
  program.model.tensor_parallel = 3;
  EXPECT_EQ(error_of([&] { validate(program, "p.json"); }).substr(0, 60),
            "p.json: 3 tensor-parallel ranks do not divide the 4 ranks of");
  Program plain = build_1f1b(plait::testing::pipeline_spec(4, 2, 2));
  plain.rank_programs[0].sections.back().ops.push_back({.kind = OpKind::update, .bytes = 8});
  EXPECT_NE(error_of([&] { validate(plain, "p.json"); }).find("belongs to a full training step"), std::string::npos);
}

}  // namespace
}  // namespace plait::schedule
