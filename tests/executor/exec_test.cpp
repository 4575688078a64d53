// The driver on one rank (SelfWorld, no MPI): MGRIT vs the serial baseline,
// the report and the trace.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "plait/executor/exec.hpp"
#include "plait/schedule/build.hpp"
#include "small_programs.hpp"

namespace plait::executor {
namespace {

using test_support::check_options;
using test_support::small_spec;

TEST(Exec, ConvergedMgritOnOneRankEqualsSerial) {
  // Two-level F-relaxation MGRIT is exact after N/cf iterations.
  const auto program = schedule::build_mgrit(small_spec(1, 8, 5, 5));
  SelfWorld world;
  const auto report = execute(world, program, check_options());
  ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
  EXPECT_LT(*report.max_rel_err_output, 1e-5);
  EXPECT_LT(*report.max_rel_err_grad, 1e-4);
  EXPECT_NEAR(report.loss, *report.serial_loss, 1e-5 * *report.serial_loss);
  EXPECT_EQ(report.gradients.size(), 8u);
  EXPECT_EQ(report.run.forward_iterations, 5);
  ASSERT_FALSE(report.run.forward_residual_norms.empty());
  for (std::size_t i = 1; i < report.run.forward_residual_norms.size(); ++i)
    EXPECT_LT(report.run.forward_residual_norms[i], 0.5 * report.run.forward_residual_norms[i - 1]);
}

// A pipeline over micro-batches computes the serial step exactly (fp32 round-off):
// the micro-batches' outputs are the batch's, their gradients sum to the batch's.
TEST(Exec, PipelinesOnOneRankEqualSerial) {
  for (auto build : {&schedule::build_gpipe, &schedule::build_1f1b}) {
    const auto program = build(test_support::small_pipeline_spec(1));
    SelfWorld world;
    const auto report = execute(world, program, check_options());
    ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad) << program.kind;
    EXPECT_LT(*report.max_rel_err_output, 1e-5) << program.kind;
    EXPECT_LT(*report.max_rel_err_grad, 1e-4) << program.kind;
    EXPECT_NEAR(report.loss, *report.serial_loss, 1e-5 * *report.serial_loss) << program.kind;
    EXPECT_EQ(report.gradients.size(), 12u);
    EXPECT_EQ(report.graph_misses, 0);
  }
}

TEST(Exec, TrainingSettingsReportTheirErrors) {
  const auto program = schedule::build_mgrit(small_spec(1, 16, 2, 1));
  SelfWorld world;
  const auto report = execute(world, program, check_options());
  ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
  // Inexact but sane: two iterations do not reach serial, nor are they far off.
  EXPECT_GT(*report.max_rel_err_output, 1e-7);
  EXPECT_LT(*report.max_rel_err_output, 1.0);
  EXPECT_GT(*report.max_rel_err_grad, 1e-6);
  EXPECT_TRUE(std::isfinite(*report.max_rel_err_grad));
  const auto json = nlohmann::json::parse(report_json(report));
  for (const char* key : {"ranks", "time_per_step_s", "cpu_time_per_step_s", "serial_time_per_step_s", "speedup",
                          "max_rel_err_output", "max_rel_err_grad"})
    EXPECT_TRUE(json.contains(key)) << key;
  EXPECT_EQ(json["ranks"], 1);
  EXPECT_GT(json["speedup"].get<double>(), 0);
  EXPECT_GT(json["cpu_time_per_step_s"].get<double>(), 0);
  // Memory is reported per rank, and every adjoint found the graph the Program kept for it.
  ASSERT_EQ(json["peak_memory_bytes"].size(), 1u);
  EXPECT_GT(json["peak_memory_bytes"][0].get<double>(), 1 << 20);
  EXPECT_EQ(json["graph_misses"], 0);
}

TEST(Exec, RecomputingEveryAdjointGivesTheSameStep) {
  // Kept graphs and recomputed ones are the same arithmetic: the Program's
  // keep/recompute marks only change where activations live.
  const auto program = schedule::build_mgrit(small_spec(1, 16, 2, 1));
  SelfWorld world;
  ExecOptions kept = check_options();
  ExecOptions recomputed = kept;
  recomputed.keep_step_graphs = false;
  const auto with_graphs = execute(world, program, kept);
  const auto without = execute(world, program, recomputed);
  EXPECT_NEAR(*with_graphs.max_rel_err_grad, *without.max_rel_err_grad, 1e-6);
  EXPECT_EQ(with_graphs.output, without.output);
}

TEST(Exec, ErrorsAreNullWithoutCheckSerial) {
  const auto program = schedule::build_mgrit(small_spec(1, 4, 1, 1));
  SelfWorld world;
  ExecOptions options;
  options.steps = 1;
  options.warmup = 0;
  options.measure_serial = false;
  const auto json = nlohmann::json::parse(report_json(execute(world, program, options)));
  EXPECT_TRUE(json["max_rel_err_output"].is_null());
  EXPECT_TRUE(json["serial_time_per_step_s"].is_null());
  EXPECT_GT(json["time_per_step_s"].get<double>(), 0);
}

TEST(Exec, TraceHasOneEventPerExecutedOp) {
  const auto program = schedule::build_mgrit(small_spec(1, 4, 2, 1));
  const std::string path = ::testing::TempDir() + "exec_trace_test.json";
  SelfWorld world;
  ExecOptions options;
  options.steps = 1;
  options.warmup = 0;
  options.measure_serial = false;
  options.trace_path = path;
  execute(world, program, options);
  std::ifstream file(path);
  const auto trace = nlohmann::json::parse(file);
  EXPECT_EQ(trace["format"], "plait.trace");
  EXPECT_EQ(trace["version"], 1);
  std::size_t executed = 0;
  for (const auto& section : program.rank_programs[0].sections) executed += section.ops.size() * section.repeat;
  ASSERT_EQ(trace["events"].size(), executed);
  double previous_end = -1;
  int steps = 0;
  for (const auto& event : trace["events"]) {
    EXPECT_LE(event["start"].get<double>(), event["end"].get<double>());
    EXPECT_GE(event["start"].get<double>(), previous_end);  // one rank: ops run one after another
    previous_end = event["end"].get<double>();
    if (event["cost_key"] == "block.fwd") ++steps;
  }
  EXPECT_GT(steps, 0);
  std::remove(path.c_str());
}

TEST(Exec, RejectsAProgramForMoreRanks) {
  auto spec = small_spec(1, 4, 1, 1);
  spec.ranks = 2;
  const auto program = schedule::build_mgrit(spec);
  SelfWorld world;
  try {
    check_run(world, program, ExecOptions{});
    FAIL() << "no error";
  } catch (const AgreedError& error) {
    EXPECT_EQ(error.reporter, 0);
    EXPECT_EQ(error.why(), "written for 2 ranks, but 1 were started (mpirun -n 2)");
  }
}

TEST(Exec, RelativeErrorIsNormwise) {
  EXPECT_DOUBLE_EQ(relative_error({3, 4}, {3, 4}), 0.0);
  EXPECT_DOUBLE_EQ(relative_error({3, 5}, {3, 4}), 0.2);
  EXPECT_DOUBLE_EQ(relative_error({1, 0}, {0, 0}), 1.0);
}

}  // namespace
}  // namespace plait::executor
