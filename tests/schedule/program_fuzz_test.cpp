// Program files: 10,000 mutated and truncated Programs each load, as the plain
// JSON document reader reads them, or give one located plait::Error (see
// tests/support/loader_fuzz.hpp).
#include <gtest/gtest.h>

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "error_text.hpp"
#include "loader_fuzz.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

std::string valid_program(const char* kind) {
  BuildSpec spec;
  spec.layers = 8;
  spec.ranks = 2;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = Relax::FCF, .iterations = 2};
  spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  spec.model.d_model = 16;
  spec.model.heads = 2;
  const std::string name = kind;
  if (name == "1f1b") {
    spec.micro_batches = 4;  // buffers of micro-batches 1..3 are written u[0][k]@m
    return dump_program(build_1f1b(spec));
  }
  if (name == "zb-h1") {  // split backwards: step_weight ops
    spec.micro_batches = 2;
    return dump_program(build_zb_h1(spec));
  }
  if (name == "1f1b x2") {  // data parallel: replicas and grad_allreduce ops
    spec.micro_batches = 2;
    spec.replicas = 2;
    return dump_program(build_1f1b(spec));
  }
  if (name == "gpt tp2") {  // tensor parallelism and a full step: update ops
    spec.micro_batches = 2;
    spec.model.tensor_parallel = 2;
    spec.model.vocab = 32;
    return dump_program(build_1f1b(spec));
  }
  if (name == "fsdp sp") {  // sharded: reduce_scatter and all_gather ops, zero_stage, the model's flags
    spec.micro_batches = 2;
    spec.replicas = 2;
    spec.zero_stage = 3;
    spec.prefetch = true;
    spec.model.tensor_parallel = 2;
    spec.model.sequence_parallel = true;
    spec.model.selective_recompute = true;
    spec.model.vocab = 32;
    return dump_program(build_1f1b(spec));
  }
  return dump_program(name == "mgrit" ? build_mgrit(spec) : build_serial(spec));
}

std::string error_of(const std::string& text) {
  return plait::testing::error_of([&] { parse_program(text, "p.json"); });
}

// What loads is what the plain JSON document reader reads from the same text
// (the ops scanner and the SAX reader agree with it).
void load_as_the_document_reader_does(const std::string& text) {
  const Program read = parse_program(text, "p.json");
  if (!(read == nlohmann::json::parse(text).get<Program>()))
    throw std::logic_error("the Program read differs from the JSON document's");
}

TEST(ProgramFuzz, MutatedMgritProgramsLoadOrGiveOneLocatedError) {
  const auto summary =
      testing::fuzz_loader(valid_program("mgrit"), "p.json", 10000, load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 5000);
}

TEST(ProgramFuzz, MutatedSerialProgramsLoadOrGiveOneLocatedError) {
  testing::fuzz_loader(valid_program("serial"), "p.json", 1000,
                       load_as_the_document_reader_does);
}

TEST(ProgramFuzz, MutatedPipelineProgramsLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_program("1f1b"), "p.json", 10000,
                                            load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 5000);
}

TEST(ProgramFuzz, MutatedDataParallelProgramsLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_program("1f1b x2"), "p.json", 10000,
                                            load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 5000);
}

TEST(ProgramFuzz, MutatedZeroBubbleProgramsLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_program("zb-h1"), "p.json", 5000,
                                            load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 2500);
}

TEST(ProgramFuzz, MutatedTensorParallelGptProgramsLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_program("gpt tp2"), "p.json", 5000,
                                            load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 2500);
}

TEST(ProgramFuzz, MutatedShardedProgramsLoadOrGiveOneLocatedError) {
  const auto summary = testing::fuzz_loader(valid_program("fsdp sp"), "p.json", 5000,
                                            load_as_the_document_reader_does);
  EXPECT_GT(summary.refused, 2500);
}

// What the fuzzer found, pinned.
TEST(ProgramFuzz, NumberOverflowIsAnError) {
  std::string text = valid_program("serial");
  text.replace(text.find("\"tolerance\":0"), 13, "\"tolerance\":1e999");
  EXPECT_EQ(error_of(text), "p.json: not valid JSON: number overflow parsing '1e999'");
}

TEST(ProgramFuzz, IntegersOutsideTheirTypeAreRefused) {
  std::string text = valid_program("serial");
  text.replace(text.find("\"layers\":8"), 10, "\"layers\":4294967304");
  EXPECT_EQ(error_of(text), "p.json: /layers: 4294967304 is outside -2147483648..2147483647");
  text = valid_program("serial");
  text.replace(text.find("\"layers\":8"), 10, "\"layers\":12.5");
  EXPECT_EQ(error_of(text), "p.json: /layers: expected an integer, got 12.5");
}

TEST(ProgramFuzz, HugeRequestsAreRefusedWithTheirLimit) {
  std::string text = valid_program("serial");
  text.replace(text.find("\"layers\":8"), 10, "\"layers\":1000000000");
  EXPECT_EQ(error_of(text).substr(0, 63), "p.json: layers 1000000000 above the limit of 16777216 (and 1 mo");
  text = valid_program("serial");
  text.replace(text.find("\"ranks\":2"), 9, "\"ranks\":1000000000");
  EXPECT_EQ(error_of(text).substr(0, 60), "p.json: ranks 1000000000 above the limit of 16777216 (and 2 ");
  text = valid_program("serial");
  text.replace(text.find("\"repeat\":1"), 10, "\"repeat\":2000000000");
  EXPECT_NE(error_of(text).find("repeat 2000000000 above the limit of 1000000"), std::string::npos)
      << error_of(text);
  text = valid_program("serial");
  text.replace(text.find("\"d_model\":16"), 12, "\"d_model\":2000000000");
  text.replace(text.find("\"batch\":8"), 9, "\"batch\":2000000000");
  EXPECT_EQ(error_of(text), "p.json: /model: model: a state of batch * seq * d_model = 5.1e+20 elements is above "
                            "the limit of 1.1e+12");
}

// A rank waiting in an allreduce was resumed by a message sent to it, ran past
// the allreduce to its end, and the report then read a section past the end.
TEST(ProgramFuzz, AMessageDoesNotResumeARankWaitingInAnAllreduce) {
  Program program;
  program.kind = "serial";
  program.layers = 2;
  program.ranks = 2;
  program.partition = {0, 1, 2};
  const Buffer reg{Space::reg, 0, 0}, state{Space::u, 0, 0};
  Section waits{.name = "waits"};
  waits.ops = {{.kind = OpKind::zero, .dst = reg}, {.kind = OpKind::allreduce, .dst = reg},
               {.kind = OpKind::recv, .dst = state, .peer = 1}};
  Section sends{.name = "sends"};
  sends.ops = {{.kind = OpKind::zero, .dst = state}, {.kind = OpKind::send, .a = state, .peer = 0}};
  program.rank_programs = {{{waits}}, {{sends}}};
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems.front().to_string(), "rank 0, section waits, op 1: waits forever in a collective (1 of 2 ranks of its group arrive)");
}

}  // namespace
}  // namespace plait::schedule
