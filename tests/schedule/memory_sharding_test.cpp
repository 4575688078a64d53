// The memory estimate against the published formulas
// (../shared/data/megatron-layer/README.md): ZeRO's bytes a parameter at each
// stage (Rajbhandari et al. 2020), one GPT layer's kept activations with and
// without sequence parallelism and selective recompute (Korthikanti et al.
// 2022), stage 3's gathered parameters, and the block stack's graph under the
// same two options.
#include <gtest/gtest.h>

#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/summary.hpp"

namespace plait::schedule {
namespace {

constexpr int adam_states = 2;

// A small GPT in fp16 over 3 stages (the middle one holds no ends), `replicas` copies.
BuildSpec gpt_spec(int stage, int replicas) {
  BuildSpec spec = plait::testing::pipeline_spec(6, 3, 2);
  spec.model.vocab = 96;
  spec.model.dtype = "fp16";
  spec.model.batch = 2 * 2 * replicas;
  spec.replicas = replicas;
  spec.zero_stage = stage;
  return spec;
}

std::int64_t sum_of(const RankMemory& m) { return m.parameters + m.gradients + m.optimizer; }

TEST(MemorySharding, EachZeroStageHoldsThePapersBytesAParameter) {
  constexpr int D = 4;
  const auto whole = estimate_memory(build_1f1b(gpt_spec(0, D)), adam_states);
  for (const int stage : {0, 1, 2, 3}) {
    const Program program = build_1f1b(gpt_spec(stage, D));
    const auto memory = estimate_memory(program, adam_states);
    ASSERT_EQ(memory.size(), whole.size());
    for (int rank = 0; rank < program.ranks; ++rank) {
      SCOPED_TRACE("stage " + std::to_string(stage) + ", rank " + std::to_string(rank));
      const double psi = double(whole[rank].parameters) / 2;  // fp16: the rank's parameter count
      const double ends = double(end_parameter_bytes(program, rank)) / 2, blocks = psi - ends;
      // Stage 3 shards the blocks' weights; the ends stay whole (gathered after the update).
      const double paper = stage == 0   ? (2 + 2 + 12) * psi
                           : stage == 1 ? (2 + 2) * psi + 12 * psi / D
                           : stage == 2 ? 2 * psi + 14 * psi / D
                                        : 2 * ends + 2 * blocks / D + 14 * psi / D;
      const double padding = 16.0 * (program.layers + 1);  // an element of each padded buffer
      EXPECT_NEAR(double(sum_of(memory[rank])), paper, padding);
      if (stage == 3 && ends == 0) {
        EXPECT_NEAR(double(sum_of(memory[rank])), 16 * psi / D, padding);
      }
      EXPECT_EQ(memory[rank].gathered > 0, stage == 3);
    }
    // The middle stage of each replica holds no ends: 16 psi / D at stage 3.
    if (stage == 3) {
      EXPECT_EQ(end_parameter_bytes(program, 1), 0);
    }
  }
}

TEST(MemorySharding, StageThreeHoldsOneGatheredBlockOrTwoWithPrefetch) {
  for (const bool prefetch : {false, true}) {
    BuildSpec spec = gpt_spec(3, 4);
    spec.prefetch = prefetch;
    const Program program = build_1f1b(spec);
    const ModelDesc model = micro_batch_model(program);
    const std::int64_t block = gradient_bytes(model, 1);  // 8544 elements: a multiple of 4 shards
    ASSERT_EQ(block % (4 * 2), 0);
    const auto memory = estimate_memory(program, adam_states);
    for (int rank = 0; rank < program.ranks; ++rank) {
      SCOPED_TRACE(std::string(prefetch ? "prefetch" : "no prefetch") + ", rank " + std::to_string(rank));
      EXPECT_EQ(memory[rank].gathered, (prefetch ? 2 : 1) * block);
      EXPECT_EQ(memory[rank].total(), sum_of(memory[rank]) + memory[rank].states + memory[rank].kept_graphs +
                                          memory[rank].recompute + memory[rank].messages + memory[rank].gathered);
    }
    const std::string table = format_summary(program, summarize(program, adam_states));
    EXPECT_NE(table.find("gathered"), std::string::npos) << table;
  }
  const Program stage_two = build_1f1b(gpt_spec(2, 4));
  EXPECT_EQ(format_summary(stage_two, summarize(stage_two)).find("gathered"), std::string::npos);
}

struct Layer {
  std::int32_t h, a, s, b, t;
};

// One GPT layer a program: `layers` of them on one stage of t shards, one micro-batch.
BuildSpec layer_spec(const Layer& shape, bool sequence_parallel, bool selective, bool recompute) {
  BuildSpec spec;
  spec.layers = 3;
  spec.model.d_model = shape.h;
  spec.model.heads = shape.a;
  spec.model.seq = shape.s;
  spec.model.batch = shape.b;
  spec.model.mlp_ratio = 4;
  spec.model.dtype = "fp16";
  spec.model.tensor_parallel = shape.t;
  spec.model.vocab = 64 * shape.t;
  spec.model.sequence_parallel = sequence_parallel;
  spec.model.selective_recompute = selective;
  spec.recompute = recompute;
  return spec;
}

TEST(MemorySharding, AGptLayersKeptGraphIsKorthikantisFormula) {
  for (const Layer& shape : {Layer{6144, 64, 2048, 4, 8}, Layer{64, 4, 16, 2, 2}}) {
    const double s = shape.s, b = shape.b, h = shape.h, a = shape.a, t = shape.t;
    struct Case {
      bool sp, selective;
      double paper;
    };
    for (const Case& c : {Case{false, false, s * b * h * (10 + 24 / t + 5 * a * s / (h * t))},
                          Case{true, false, s * b * h / t * (34 + 5 * a * s / h)},
                          Case{false, true, s * b * h * (10 + 24 / t)},
                          Case{true, true, 34 * s * b * h / t}}) {
      SCOPED_TRACE("h " + std::to_string(shape.h) + (c.sp ? ", sequence parallel" : "") +
                   (c.selective ? ", selective" : ""));
      const Program program = build_1f1b(layer_spec(shape, c.sp, c.selective, false));
      const ModelDesc model = micro_batch_model(program);
      EXPECT_NEAR(double(graph_bytes(model)), c.paper, 1.0);
      for (const RankMemory& memory : estimate_memory(program, adam_states)) {
        EXPECT_NEAR(double(memory.kept_graphs) / program.layers, c.paper, 1.0);  // every layer kept
        EXPECT_EQ(memory.recompute, 0);
      }
    }
    // Full recompute: no kept graph, one layer's rebuilt while its backward
    // runs, and each layer's input held (2 s b h, 1 / t of it under sequence parallelism).
    const std::int64_t whole_states = estimate_memory(build_1f1b(layer_spec(shape, false, false, true)))[0].states;
    for (const bool sp : {false, true}) {
      SCOPED_TRACE("h " + std::to_string(shape.h) + ", full recompute" + (sp ? ", sequence parallel" : ""));
      const Program program = build_1f1b(layer_spec(shape, sp, false, true));
      const double input = 2 * s * b * h / (sp ? t : 1);
      for (const RankMemory& memory : estimate_memory(program, adam_states)) {
        EXPECT_EQ(memory.kept_graphs, 0);
        EXPECT_EQ(memory.recompute, graph_bytes(micro_batch_model(program)));
        EXPECT_GE(double(memory.states), program.layers * input);
        EXPECT_LE(double(memory.states), (program.layers + 3) * input);
        EXPECT_EQ(memory.states * (sp ? shape.t : 1), whole_states);  // the same states, 1 / t of each
      }
    }
  }
}

TEST(MemorySharding, TheBlockStacksGraphDropsScoresWhenSelectiveAndSplitsItsNormsWhenSequenceParallel) {
  BuildSpec spec = plait::testing::pipeline_spec(4, 1, 1);
  spec.model.tensor_parallel = 2;
  const ModelDesc plain = spec.model;
  ModelDesc selective = plain, sp = plain, both = plain;
  selective.selective_recompute = both.selective_recompute = true;
  sp.sequence_parallel = both.sequence_parallel = true;
  const std::int64_t e = 4, tokens = std::int64_t{plain.batch} * plain.seq, d = plain.d_model;
  const std::int64_t scores = std::int64_t{plain.batch} * plain.heads / 2 * plain.seq * plain.seq * 3 * e;
  const std::int64_t norms = tokens * 4 * d * e;  // x, LN1 out, y, LN2 out
  EXPECT_EQ(graph_bytes(plain) - graph_bytes(selective), scores);
  EXPECT_EQ(graph_bytes(plain) - graph_bytes(sp), norms / 2);
  EXPECT_EQ(graph_bytes(plain) - graph_bytes(both), scores + norms / 2);
  // Between blocks a rank holds its half of the sequence.
  BuildSpec split = spec;
  split.model = sp;
  const RankMemory whole = estimate_memory(build_1f1b(spec))[0], half = estimate_memory(build_1f1b(split))[0];
  EXPECT_EQ(2 * half.states, whole.states);
}

}  // namespace
}  // namespace plait::schedule

namespace plait::schedule {
namespace {

bool same(const RankMemory& x, const RankMemory& y) {
  return x.parameters == y.parameters && x.gradients == y.gradients && x.optimizer == y.optimizer &&
         x.states == y.states && x.kept_graphs == y.kept_graphs && x.recompute == y.recompute &&
         x.messages == y.messages && x.gathered == y.gathered;
}

// The first replica alone (plait plan's shortcut), dry-run or even built,
// gives what the whole dry run gives its ranks, sharded or not, pipelined or MGRIT.
TEST(MemorySharding, TheFirstReplicaAloneHoldsWhatTheWholeRunGivesIt) {
  for (const int stage : {0, 1, 3})
    for (const auto build : {&build_1f1b, &build_gpipe, &build_mgrit}) {
      BuildSpec spec = gpt_spec(stage, 3);
      if (build == &build_mgrit) spec.micro_batches = 1;
      spec.prefetch = stage == 3;
      const Program program = build(spec);
      const auto whole = estimate_memory(program, adam_states), first = estimate_memory(program, adam_states, true);
      ASSERT_EQ(first.size(), std::size_t(ranks_per_replica(program))) << program.kind;
      for (std::size_t rank = 0; rank < first.size(); ++rank)
        EXPECT_TRUE(same(first[rank], whole[rank])) << program.kind << " stage " << stage << " rank " << rank;
      // Built with its first replica alone: those ranks' ops, and the same estimate.
      spec.first_replica_only = true;
      const Program one = build(spec);
      EXPECT_EQ(one.ranks, program.ranks);
      ASSERT_EQ(one.rank_programs.size(), first.size());
      for (std::size_t rank = 0; rank < first.size(); ++rank)
        EXPECT_EQ(one.rank_programs[rank], program.rank_programs[rank]) << program.kind << " rank " << rank;
      const auto from_one = estimate_memory(one, adam_states, true);
      for (std::size_t rank = 0; rank < first.size(); ++rank) EXPECT_TRUE(same(from_one[rank], first[rank]));
    }
}

}  // namespace
}  // namespace plait::schedule
