// Pipeline builders (GPipe, 1F1B): valid Programs at every stage and
// micro-batch count, the work they do, the activations they hold (against
// closed forms), micro-batch buffers in JSON, and one-line errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::pipeline_spec;

using Builder = Program (*)(const BuildSpec&);

struct Counts {
  int input = 0, loss = 0, steps = 0, adjoint_steps = 0, released = 0;
};

Counts count_ops(const Program& program, int rank) {
  Counts counts;
  for (const Section& section : program.rank_programs.at(rank).sections)
    for (const Op& op : section.ops) {
      counts.input += op.kind == OpKind::input;
      counts.loss += op.kind == OpKind::loss;
      counts.steps += op.kind == OpKind::step && op.graph == GraphUse::keep;
      counts.adjoint_steps += op.kind == OpKind::step_adjoint && op.accumulate_grad;
      counts.released += op.kind == OpKind::step_adjoint && op.graph == GraphUse::release;
    }
  return counts;
}

TEST(Pipeline, EveryStageAndMicroBatchCountGivesAValidProgramDoingTheSerialWork) {
  for (const Builder build : {&build_gpipe, &build_1f1b})
    for (int stages = 1; stages <= 5; ++stages)
      for (int micro : {1, 2, 4, 8}) {
        const Program program = build(pipeline_spec(13, stages, micro));
        SCOPED_TRACE(program.kind + " P" + std::to_string(stages) + " M" + std::to_string(micro));
        EXPECT_NO_THROW(validate(program, "p.json"));
        EXPECT_EQ(program.micro_batches, micro);
        for (int stage = 0; stage < stages; ++stage) {
          const int blocks = program.partition[stage + 1] - program.partition[stage];
          EXPECT_GE(blocks, 13 / stages);  // even: 13 blocks over P stages differ by at most one
          EXPECT_LE(blocks, 13 / stages + 1);
          const Counts counts = count_ops(program, stage);
          EXPECT_EQ(counts.input, stage == 0 ? micro : 0);
          EXPECT_EQ(counts.loss, stage == stages - 1 ? micro : 0);
          EXPECT_EQ(counts.steps, micro * blocks);  // each block once per micro-batch, forward
          EXPECT_EQ(counts.adjoint_steps, micro * blocks);  // and backward with its gradient
          EXPECT_EQ(counts.released, micro * blocks);
        }
      }
}

TEST(Pipeline, MessagesCarryOneMicroBatchsState) {
  const Program program = build_1f1b(pipeline_spec(8, 2, 4));
  const std::int64_t micro_state = 2 * 8 * 32 * 4;  // batch 8 / 4 micro-batches, seq 8, d 32, fp32
  int messages = 0;
  for (const Op& op : program.rank_programs[0].sections[0].ops)
    if (op.kind == OpKind::send || op.kind == OpKind::recv) {
      EXPECT_EQ(op.bytes, micro_state);
      ++messages;
    }
  EXPECT_EQ(messages, 2 * 4);  // per micro-batch: its forward state out, its adjoint back
  EXPECT_EQ(micro_batch_model(program).batch, 2);
  EXPECT_EQ(program.work.at("block.fwd"), work_table(micro_batch_model(program)).at("block.fwd"));
}

TEST(Pipeline, OneFOneBOrderAlternatesAfterItsWarmup) {
  // Stage 0 of 3 with 4 micro-batches: F0 F1, then F2 B0, F3 B1, then B2 B3.
  const Program program = build_1f1b(pipeline_spec(3, 3, 4));
  std::string order;
  for (const Op& op : program.rank_programs[0].sections[0].ops) {
    if (op.kind == OpKind::step) order += "F" + std::to_string(op.a.micro) + " ";
    if (op.kind == OpKind::step_adjoint) order += "B" + std::to_string(op.a.micro) + " ";
  }
  EXPECT_EQ(order, "F0 F1 F2 B0 F3 B1 B2 B3 ");
}

// Activations held at the peak, in kept graphs of one micro-batch each: GPipe
// holds every micro-batch on every stage; 1F1B stage s at most P - s of them.
TEST(Pipeline, KeptActivationsMatchTheClosedForms) {
  for (int stages = 1; stages <= 4; ++stages)
    for (int micro : {1, 2, 4, 8}) {
      const BuildSpec spec = pipeline_spec(8, stages, micro);
      const Program gpipe = build_gpipe(spec), one_f_one_b = build_1f1b(spec);
      const std::int64_t graph = graph_bytes(micro_batch_model(gpipe));
      const auto gpipe_memory = estimate_memory(gpipe), one_f_one_b_memory = estimate_memory(one_f_one_b);
      for (int stage = 0; stage < stages; ++stage) {
        SCOPED_TRACE("P" + std::to_string(stages) + " M" + std::to_string(micro) + " stage " + std::to_string(stage));
        const int blocks = gpipe.partition[stage + 1] - gpipe.partition[stage];
        EXPECT_EQ(gpipe_memory[stage].kept_graphs, std::int64_t{micro} * blocks * graph);
        EXPECT_EQ(one_f_one_b_memory[stage].kept_graphs, std::int64_t{std::min(stages - stage, micro)} * blocks * graph);
      }
    }
}

TEST(Pipeline, MicroBatchBuffersRoundTripThroughJson) {
  const Program program = build_gpipe(pipeline_spec(6, 2, 4));
  const Program loaded = parse_program(dump_program(program), "p.json");
  EXPECT_EQ(loaded, program);
  EXPECT_NE(dump_program(program).find("\"u[0][3]@2\""), std::string::npos);
  EXPECT_NE(dump_program(program).find("\"graph\":\"release\""), std::string::npos);
  EXPECT_EQ(parse_buffer("w[0][5]@3"), (Buffer{Space::w, 0, 5, 3}));
  EXPECT_EQ(to_string(Buffer{Space::u, 0, 4, 0}), "u[0][4]");
  EXPECT_THROW(parse_buffer("tmp[0]@1"), Error);
  EXPECT_THROW(parse_buffer("u[0][4]@"), Error);
  EXPECT_THROW(parse_buffer("u[0][4]@-1"), Error);
}

TEST(Pipeline, ValidationRefusesAMicroBatchOutsideTheProgram) {
  Program program = build_gpipe(pipeline_spec(4, 2, 2));
  program.rank_programs[0].sections[0].ops[0].dst.micro = 2;  // of 2 micro-batches: 0 and 1
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().to_string().find("u[0][0]@2 names micro-batch 2 of 2"), std::string::npos)
      << problems.front().to_string();
  program = build_gpipe(pipeline_spec(4, 2, 2));
  program.micro_batches = 3;  // does not divide the batch of 8
  EXPECT_NE(find_problems(program).front().to_string().find("micro_batches 3 x replicas 1 must divide the batch"), std::string::npos);
}

TEST(Pipeline, BadSettingsAreOneLineErrors) {
  const auto error_of = [](Builder build, const BuildSpec& spec) {
    return plait::testing::error_of([&] { build(spec); });
  };
  EXPECT_EQ(error_of(&build_1f1b, pipeline_spec(4, 5, 2)),
            "stages: 5 stages but only 4 layers: every stage needs at least one layer");
  EXPECT_EQ(error_of(&build_gpipe, pipeline_spec(8, 2, 3)), "micro-batches: 3 does not divide the batch of 8");
  EXPECT_EQ(error_of(&build_gpipe, pipeline_spec(8, 2, 0)), "micro-batches: must be in 1..65536");
  BuildSpec linear = pipeline_spec(8, 2, 2);
  linear.model.kind = "linear";
  EXPECT_EQ(error_of(&build_gpipe, linear), "micro-batches: a linear model has no batch to split");
}

}  // namespace
}  // namespace plait::schedule
