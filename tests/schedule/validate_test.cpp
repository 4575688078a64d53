// The validator finds each kind of broken Program and says which.
#include <gtest/gtest.h>

#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

Program sample_program() {
  BuildSpec spec;
  spec.layers = 16;
  spec.ranks = 2;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 2};
  spec.adjoint = spec.forward;
  spec.model.kind = "linear";
  return build_mgrit(spec);
}

// The first op of `kind` on `rank`, as (section, op index).
std::pair<int, int> find_op(const Program& program, int rank, OpKind kind) {
  const auto& sections = program.rank_programs[rank].sections;
  for (int s = 0; s < static_cast<int>(sections.size()); ++s) {
    for (int i = 0; i < static_cast<int>(sections[s].ops.size()); ++i) {
      if (sections[s].ops[i].kind == kind) return {s, i};
    }
  }
  throw std::runtime_error("no such op");
}

Op& op_at(Program& program, int rank, std::pair<int, int> where) {
  return program.rank_programs[rank].sections[where.first].ops[where.second];
}

std::string first_problem(const Program& program) {
  const auto problems = find_problems(program);
  return problems.empty() ? "valid" : problems.front().to_string();
}

TEST(Validate, BuiltProgramsAreValid) {
  EXPECT_EQ(first_problem(sample_program()), "valid");
  EXPECT_NO_THROW(validate(sample_program()));
}

TEST(Validate, DroppedRecvIsReported) {
  Program program = sample_program();
  const auto where = find_op(program, 1, OpKind::recv);
  auto& ops = program.rank_programs[1].sections[where.first].ops;
  ops.erase(ops.begin() + where.second);
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  bool unreceived = false;
  for (const auto& problem : problems) {
    unreceived |= problem.reason.find("are never received") != std::string::npos ||
                  problem.reason.find("before it is written") != std::string::npos;
  }
  EXPECT_TRUE(unreceived) << first_problem(program);
}

TEST(Validate, TagMismatchIsReported) {
  Program program = sample_program();
  const auto where = find_op(program, 1, OpKind::recv);
  op_at(program, 1, where).tag += 1;
  const std::string expected_start = "rank 1, section " + program.rank_programs[1].sections[where.first].name +
                                     ", op " + std::to_string(where.second) + ": recv from rank 0 expects tag";
  EXPECT_EQ(first_problem(program).rfind(expected_start, 0), 0u) << first_problem(program);
}

TEST(Validate, ReadBeforeWriteIsReported) {
  Program program = sample_program();
  const auto where = find_op(program, 0, OpKind::step);
  op_at(program, 0, where).a = Buffer{Space::u, 5, 3};
  EXPECT_NE(first_problem(program).find("reads u[5][3] before it is written"), std::string::npos)
      << first_problem(program);
}

TEST(Validate, OrderThatDeadlocksIsReported) {
  // Two ranks that each receive before they send: a classic deadlock.
  Program program = sample_program();
  for (int rank : {0, 1}) {
    Section section{"swap", Phase::none, false, 1, {}};
    section.ops.push_back({.kind = OpKind::recv, .dst = Buffer{Space::tmp, 0, 5}, .peer = 1 - rank, .tag = 9, .bytes = 8});
    section.ops.push_back({.kind = OpKind::send, .a = Buffer{Space::tmp, 0, 5}, .peer = 1 - rank, .tag = 9, .bytes = 8});
    program.rank_programs[rank].sections.insert(program.rank_programs[rank].sections.begin() + 1, section);
  }
  const auto problems = find_problems(program);
  std::vector<std::string> deadlocked;
  for (const auto& problem : problems) {
    if (problem.reason.find("deadlock") != std::string::npos) deadlocked.push_back(problem.to_string());
  }
  ASSERT_EQ(deadlocked.size(), 2u) << first_problem(program);
  EXPECT_EQ(deadlocked[0], "rank 0, section swap, op 0: deadlock: waits forever in recv from rank 1 (tag 9)");
}

TEST(Validate, BadPeerAndCountsAreReported) {
  Program program = sample_program();
  op_at(program, 0, find_op(program, 0, OpKind::send)).peer = 0;
  EXPECT_NE(first_problem(program).find("peer 0 is not another rank"), std::string::npos);

  program = sample_program();
  program.rank_programs.pop_back();
  EXPECT_EQ(first_problem(program), "program says 2 ranks but has 1 rank programs");
}

TEST(Validate, ErrorNamesOriginAndCountsTheRest) {
  Program program = sample_program();
  op_at(program, 1, find_op(program, 1, OpKind::recv)).tag += 1;
  try {
    validate(program, "p.json");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).rfind("p.json: rank 1, section", 0), 0u) << error.what();
  }
}

TEST(Validate, CriticalPathOfSerialProgramIsTwoSweeps) {
  BuildSpec spec;
  spec.layers = 12;
  spec.ranks = 3;
  spec.model.kind = "linear";
  EXPECT_EQ(critical_path_steps(build_serial(spec)), 24);
}

TEST(Validate, CriticalPathOfMgritIsShorterThanItsWork) {
  BuildSpec spec;
  spec.layers = 256;
  spec.ranks = 8;
  spec.forward = {.levels = 3, .coarsening_factor = 4, .relax = Relax::F, .iterations = 2};
  spec.adjoint = {.levels = 3, .coarsening_factor = 4, .relax = Relax::F, .iterations = 1};
  spec.model.kind = "linear";
  const double path = critical_path_steps(build_mgrit(spec));
  EXPECT_LT(path, 2 * 256);  // shorter than the serial sweep
  EXPECT_GT(path, 2 * 256 / 8);  // but no better than perfect division
}

}  // namespace
}  // namespace plait::schedule
