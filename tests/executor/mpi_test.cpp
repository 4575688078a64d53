// MGRIT on real MPI ranks (run by ctest through mpiexec with 2 or 3 ranks):
// converged MGRIT equals the serial baseline, P = 1 and P = world size agree,
// training settings report their errors, and the trace aligns the ranks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <tuple>

#include <nlohmann/json.hpp>

#include "plait/executor/exec.hpp"
#include "mpi_test_main.hpp"
#include "plait/executor/mpi_world.hpp"
#include "plait/schedule/build.hpp"
#include "small_programs.hpp"

namespace plait::executor {
namespace {

using test_support::check_options;
using test_support::small_spec;

World* world = nullptr;

// The report of a step checked against the serial baseline equals it to fp32
// round-off, with a gradient for each of `gradients` blocks.
void expect_serial_step(const ExecReport& report, std::size_t gradients) {
  ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
  EXPECT_LT(*report.max_rel_err_output, 1e-5);
  EXPECT_LT(*report.max_rel_err_grad, 1e-4);
  EXPECT_NEAR(report.loss, *report.serial_loss, 1e-5 * *report.serial_loss);
  EXPECT_EQ(report.gradients.size(), gradients);
}

// Runs `program` checked against serial on the world's first program.ranks
// ranks (a collective over the world); the report on the first of them, none
// elsewhere or when the world is too small.
std::optional<ExecReport> run_on_first_ranks(const schedule::Program& program) {
  auto group = make_mpi_subworld(world->rank() < program.ranks);
  if (program.ranks > world->size() || !group) return std::nullopt;
  ExecReport report = execute(*group, program, check_options());
  if (group->rank() != 0) return std::nullopt;
  return report;
}

TEST(MpiExec, ConvergedMgritEqualsSerial) {
  const auto program = schedule::build_mgrit(small_spec(world->size(), 12, 7, 7));
  const auto report = execute(*world, program, check_options());
  if (world->rank() != 0) return;  // results live on rank 0
  ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
  EXPECT_LT(*report.max_rel_err_output, 1e-5);
  EXPECT_LT(*report.max_rel_err_grad, 1e-4);
  EXPECT_EQ(report.gradients.size(), 12u);
  EXPECT_EQ(report.ranks, world->size());
}

TEST(MpiExec, OneRankAndAllRanksGiveTheSameResults) {
  const auto spec = small_spec(world->size(), 12, 2, 1);  // training settings: inexact on purpose
  const auto all = execute(*world, schedule::build_mgrit(spec), check_options());
  auto single_spec = spec;
  single_spec.ranks = 1;
  ExecReport single;
  if (auto alone = make_mpi_subworld(world->rank() == 0)) {
    single = execute(*alone, schedule::build_mgrit(single_spec), check_options());
  }
  if (world->rank() != 0) return;
  EXPECT_LT(relative_error(all.output, single.output), 1e-6);
  ASSERT_EQ(all.gradients.size(), single.gradients.size());
  for (const auto& [block, gradient] : single.gradients)
    EXPECT_LT(relative_error(all.gradients.at(block), gradient), 1e-5) << "block " << block;
  ASSERT_EQ(all.run.forward_residual_norms.size(), single.run.forward_residual_norms.size());
  for (std::size_t i = 0; i < all.run.forward_residual_norms.size(); ++i)
    EXPECT_NEAR(all.run.forward_residual_norms[i], single.run.forward_residual_norms[i],
                1e-4 * single.run.forward_residual_norms[i]);
  // The training settings are inexact, and the report says by how much.
  ASSERT_TRUE(all.max_rel_err_output && all.max_rel_err_grad);
  EXPECT_GT(*all.max_rel_err_grad, 1e-6);
  EXPECT_NEAR(*all.max_rel_err_grad, *single.max_rel_err_grad, 1e-3 * *single.max_rel_err_grad);
}

// Every pipeline kind, with and without activation checkpointing, equals the
// serial step on 1, 2 and 3 ranks (the world's first ranks), to fp32 round-off.
TEST(MpiExec, PipelinesEqualSerialOnEveryRankCount) {
  for (int ranks = 1; ranks <= world->size(); ++ranks) {
    auto group = make_mpi_subworld(world->rank() < ranks);
    if (!group) continue;
    schedule::BuildSpec interleaved = test_support::small_pipeline_spec(ranks);
    interleaved.model.batch = 12;
    interleaved.micro_batches = 2 * ranks;  // a multiple of the stages
    interleaved.virtual_stages = 2;
    schedule::BuildSpec recompute = test_support::small_pipeline_spec(ranks);
    recompute.recompute = true;
    for (const auto& [build, spec] : {std::pair{&schedule::build_gpipe, test_support::small_pipeline_spec(ranks)},
                                      {&schedule::build_1f1b, test_support::small_pipeline_spec(ranks)},
                                      {&schedule::build_1f1b_interleaved, interleaved},
                                      {&schedule::build_zb_h1, test_support::small_pipeline_spec(ranks)},
                                      {&schedule::build_1f1b, recompute}}) {
      const auto program = build(spec);
      const auto report = execute(*group, program, check_options());
      if (group->rank() != 0) continue;
      SCOPED_TRACE(program.kind + (spec.recompute ? " recomputing" : "") + " on " + std::to_string(ranks) + " rank(s)");
      ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
      EXPECT_LT(*report.max_rel_err_output, 1e-5);
      EXPECT_LT(*report.max_rel_err_grad, 1e-4);
      EXPECT_NEAR(report.loss, *report.serial_loss, 1e-5 * *report.serial_loss);
      EXPECT_EQ(report.gradients.size(), 12u);
      EXPECT_EQ(report.graph_misses, 0);
    }
  }
}

// Frozen blocks (PipeTransformer): the trained blocks' gradients equal the
// serial step's, the frozen ones have none; re-packed onto fewer stages and
// more replicas, the same.
TEST(MpiExec, FrozenPipelinesEqualSerialOnTheTrainedBlocks) {
  for (int ranks = 1; ranks <= world->size(); ++ranks) {
    auto group = make_mpi_subworld(world->rank() < ranks);
    if (!group) continue;
    for (const int frozen : {5, 10}) {
      schedule::BuildSpec spec = test_support::small_pipeline_spec(ranks);
      spec.model.batch = 12;
      spec.micro_batches = 2;
      spec.frozen_blocks = frozen;
      spec.repack = frozen == 10;  // 10 of 12 frozen: an even stage count halves
      const auto program = schedule::build_kind("1f1b", spec);
      if (spec.repack && ranks % 2 == 0) {
        EXPECT_GT(program.replicas, 1);
      }
      const auto report = execute(*group, program, check_options());
      if (group->rank() != 0) continue;
      SCOPED_TRACE(std::to_string(frozen) + " frozen on " + std::to_string(program.ranks / program.replicas) +
                   " stage(s) x " + std::to_string(program.replicas) + " replica(s)");
      ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
      EXPECT_LT(*report.max_rel_err_output, 1e-5);
      EXPECT_LT(*report.max_rel_err_grad, 1e-4);
      EXPECT_EQ(report.gradients.size(), std::size_t(12 - frozen));
      EXPECT_FALSE(report.gradients.contains(frozen - 1));
      EXPECT_EQ(report.graph_misses, 0);
    }
  }
}

// Data parallelism: every split of the world's first ranks into replicas x
// ranks per replica, for converged MGRIT and both pipelines, equals the serial
// step (run with 3 and with 4 ranks: D = 2, 3, 4 and P x D = 2 x 2).
TEST(MpiExec, DataParallelEqualsSerialOnEverySplit) {
  for (int ranks = 2; ranks <= world->size(); ++ranks) {
    auto group = make_mpi_subworld(world->rank() < ranks);
    if (!group) continue;
    for (int replicas = 2; replicas <= ranks; ++replicas) {
      if (ranks % replicas != 0) continue;
      schedule::BuildSpec mgrit = small_spec(ranks / replicas, 12, 7, 7);
      mgrit.model.batch = 24;
      schedule::BuildSpec pipeline = mgrit;
      pipeline.micro_batches = 2;
      schedule::BuildSpec overlapped = pipeline;
      overlapped.dp_overlap = true;
      overlapped.bucket_bytes = 1;  // a block a bucket, summed amid the backward
      for (const auto& [build, spec] : {std::pair{&schedule::build_mgrit, mgrit}, {&schedule::build_gpipe, pipeline},
                                        {&schedule::build_1f1b, pipeline}, {&schedule::build_1f1b, overlapped}}) {
        schedule::BuildSpec replicated = spec;
        replicated.replicas = replicas;
        const auto program = build(replicated);
        const auto report = execute(*group, program, check_options());
        if (group->rank() != 0) continue;
        SCOPED_TRACE(program.kind + (spec.dp_overlap ? " overlapped" : "") + " on " + std::to_string(ranks / replicas) + " rank(s) x " +
                     std::to_string(replicas) + " replicas");
        expect_serial_step(report, 12);
      }
    }
  }
}

// Tensor parallelism (Megatron, T = 2): alone, with 2 pipeline stages (every
// kind, checkpointing too), with 2 replicas, and under converged MGRIT on 2
// ranks, equal the serial step (run with 4 ranks; with 3, the 2-rank cases).
TEST(MpiExec, TensorParallelEqualsSerial) {
  struct Case {
    schedule::Program (*build)(const schedule::BuildSpec&);
    schedule::BuildSpec spec;
    int replicas;
  };
  std::vector<Case> cases;
  for (int stages : {1, 2}) {
    schedule::BuildSpec pipeline = test_support::small_pipeline_spec(stages);
    schedule::BuildSpec recompute = pipeline;
    recompute.recompute = true;
    schedule::BuildSpec interleaved = pipeline;
    interleaved.virtual_stages = 2;
    cases.push_back({&schedule::build_1f1b, pipeline, 1});
    cases.push_back({&schedule::build_1f1b, recompute, 1});
    cases.push_back({&schedule::build_gpipe, pipeline, 2});
    cases.push_back({&schedule::build_mgrit, small_spec(stages, 12, 7, 7), 1});
    if (stages == 2) {
      cases.push_back({&schedule::build_zb_h1, pipeline, 1});
      cases.push_back({&schedule::build_1f1b_interleaved, interleaved, 1});
    }
  }
  for (Case& c : cases) {
    c.spec.model.tensor_parallel = 2;
    c.spec.replicas = c.replicas;
    if (c.replicas > 1) c.spec.model.batch *= c.replicas;
    const auto program = c.build(c.spec);
    const auto report = run_on_first_ranks(program);
    if (!report) continue;
    SCOPED_TRACE(program.kind + (c.spec.recompute ? " recomputing" : "") + ": tp 2 x " +
                 std::to_string(c.spec.ranks) + " stage(s) x " + std::to_string(c.replicas) + " replica(s)");
    expect_serial_step(*report, 12);
  }
}

// A full GPT step (embeddings, tied output layer, cross-entropy, Adam):
// every kind, with tensor, pipeline and data parallelism up to 4 ranks, and
// MGRIT in TorchBraid's layout (ends on the first rank, per-tensor sums),
// gives the serial step's loss and gradients, the ends' included.
TEST(MpiExec, GptStepEqualsSerial) {
  struct Case {
    schedule::Program (*build)(const schedule::BuildSpec&);
    int stages, tp, replicas;
    bool recompute = false, overlap = false;
    int virtual_stages = 1;
    bool torchbraid = false;  // the ends on each replica's first rank, gradients summed a tensor at a time
  };
  const std::vector<Case> cases{{&schedule::build_1f1b, 1, 1, 1},
                                {&schedule::build_1f1b, 2, 1, 1},
                                {&schedule::build_1f1b, 2, 2, 1, true},
                                {&schedule::build_zb_h1, 2, 2, 1},
                                {&schedule::build_gpipe, 1, 2, 2},
                                {&schedule::build_1f1b, 2, 1, 2, false, true},
                                {&schedule::build_1f1b_interleaved, 2, 2, 1, false, false, 2},
                                {&schedule::build_mgrit, 2, 2, 1},
                                {&schedule::build_mgrit, 2, 1, 1, false, false, 1, true},
                                {&schedule::build_mgrit, 2, 1, 2, false, false, 1, true}};
  for (const Case& c : cases) {
    schedule::BuildSpec spec = c.build == &schedule::build_mgrit ? small_spec(c.stages, 12, 7, 7)
                                                                 : test_support::small_pipeline_spec(c.stages);
    spec.model.vocab = 64;
    spec.model.tensor_parallel = c.tp;
    spec.replicas = c.replicas;
    spec.model.batch *= c.replicas;
    spec.recompute = c.recompute;
    spec.dp_overlap = c.overlap;
    spec.virtual_stages = c.virtual_stages;
    spec.bucket_bytes = 1;  // with dp_overlap: a block a bucket
    spec.ends_on_first_rank = spec.dp_per_tensor = c.torchbraid;
    const auto program = c.build(spec);
    const auto report = run_on_first_ranks(program);
    if (!report) continue;
    SCOPED_TRACE(program.kind + (c.recompute ? " recomputing" : "") + (c.overlap ? " overlapped" : "") +
                 (c.torchbraid ? " ends on rank 0, per-tensor sums" : "") + ": tp " +
                 std::to_string(c.tp) + " x " + std::to_string(c.stages) + " stage(s) x " +
                 std::to_string(c.replicas) + " replica(s)");
    expect_serial_step(*report, 14);  // with a GPT step's ends: 12 blocks, the embeddings, the final LayerNorm
    EXPECT_NEAR(report->loss, std::log(64.0), 0.1) << "random tokens, small logits: about log V";
  }
}

// Sequence parallelism (Megatron, T = 2): the block's norms, dropouts and
// residual adds on half the sequence, all-gathers and reduce-scatters along
// it around the matmuls. The block stack and a GPT step, on 1 and 2 pipeline
// stages (1f1b, also recomputing) and with 2 replicas, equal the serial step;
// with selective recomputation (which keeps the whole graph here: only the
// memory model differs) the numbers are the same, bit for bit.
TEST(MpiExec, SequenceParallelEqualsSerial) {
  struct Case {
    schedule::Program (*build)(const schedule::BuildSpec&);
    int stages, replicas;
    int vocab;
    bool recompute = false;
  };
  const std::vector<Case> cases{{&schedule::build_1f1b, 1, 1, 0},         {&schedule::build_1f1b, 2, 1, 0},
                                {&schedule::build_1f1b, 2, 1, 0, true},   {&schedule::build_gpipe, 1, 2, 0},
                                {&schedule::build_1f1b, 1, 1, 64},        {&schedule::build_1f1b, 2, 1, 64},
                                {&schedule::build_1f1b, 2, 1, 64, true}};
  for (const Case& c : cases) {
    schedule::BuildSpec spec = test_support::small_pipeline_spec(c.stages);
    spec.model.vocab = c.vocab;
    spec.model.tensor_parallel = 2;
    spec.model.sequence_parallel = true;
    spec.replicas = c.replicas;
    spec.model.batch *= c.replicas;
    spec.recompute = c.recompute;
    std::optional<ExecReport> reports[2];
    for (const bool selective : {false, true}) {
      spec.model.selective_recompute = selective;
      const auto program = c.build(spec);
      ASSERT_TRUE(program.model.sequence_parallel);
      reports[selective] = run_on_first_ranks(program);
      if (!reports[selective]) continue;
      SCOPED_TRACE(program.kind + (c.recompute ? " recomputing" : "") + (selective ? " selective" : "") +
                   (c.vocab > 0 ? " GPT" : " blocks") + ": tp 2 + sp x " + std::to_string(c.stages) +
                   " stage(s) x " + std::to_string(c.replicas) + " replica(s)");
      expect_serial_step(*reports[selective], c.vocab > 0 ? 14 : 12);
    }
    if (!reports[0] || !reports[1]) continue;
    SCOPED_TRACE(std::string("selective against kept graphs, case of ") + std::to_string(c.stages) + " stage(s)");
    EXPECT_EQ(reports[1]->loss, reports[0]->loss);
    EXPECT_EQ(reports[1]->output, reports[0]->output);
    EXPECT_EQ(reports[1]->gradients, reports[0]->gradients);
  }
}

TEST(MpiExec, TraceHasEveryRankOnOneClock) {
  const std::string path = ::testing::TempDir() + "mpi_trace_test.json";
  ExecOptions options;
  options.steps = 1;
  options.warmup = 0;
  options.measure_serial = false;
  options.trace_path = path;
  const auto program = schedule::build_mgrit(small_spec(world->size(), 12, 2, 1));
  execute(*world, program, options);
  if (world->rank() != 0) return;
  std::ifstream file(path);
  const auto trace = nlohmann::json::parse(file);
  std::map<int, int> per_rank;
  // A message's recv cannot end before its send started. Messages pair up as
  // MPI matches them: in order per sender, receiver and tag.
  auto op_of = [&](const nlohmann::json& e) -> const schedule::Op& {
    return program.rank_programs.at(e["rank"].get<std::size_t>())
        .sections.at(e["section"].get<std::size_t>())
        .ops.at(e["op"].get<std::size_t>());
  };
  std::map<std::tuple<int, int, int>, std::vector<double>> send_starts;
  std::map<std::tuple<int, int, int>, int> recvs_seen;
  for (const auto& e : trace["events"]) ++per_rank[e["rank"].get<int>()];
  for (const auto& e : trace["events"])
    if (e["cost_key"] == "comm.send")
      send_starts[{e["rank"].get<int>(), e["peer"].get<int>(), op_of(e).tag}].push_back(e["start"]);
  int checked = 0;
  for (const auto& e : trace["events"]) {
    if (e["cost_key"] != "comm.recv") continue;
    const std::tuple<int, int, int> key{e["peer"].get<int>(), e["rank"].get<int>(), op_of(e).tag};
    const auto& starts = send_starts[key];
    const int n = recvs_seen[key]++;
    ASSERT_LT(n, int(starts.size()));
    EXPECT_GE(e["end"].get<double>(), starts[n]) << "recv on rank " << e["rank"] << " from " << e["peer"];
    ++checked;
  }
  EXPECT_EQ(int(per_rank.size()), world->size());
  if (world->size() > 1) {
    EXPECT_GT(checked, 0);
  }
  std::remove(path.c_str());
}

// ctest starts every rank on this machine, where they all read one clock.
TEST(MpiClock, RanksOnOneMachineShareRankZerosClock) {
  const ClockSample sample = world->sample_clock_offset();
  EXPECT_EQ(sample.offset, 0.0);
  EXPECT_EQ(sample.uncertainty, 0.0);
}

// Measured anyway, the offset of a shared clock (truly 0) lies within the
// uncertainty reported: the peer read its clock between the ping's send and
// the reply's receipt. The figures are printed, not asserted.
TEST(MpiClock, AMeasuredOffsetIsWithinItsUncertainty) {
  auto measured = make_mpi_world(ClockSync::measure_every_rank);
  const ClockSample sample = measured->sample_clock_offset();
  EXPECT_LE(std::abs(sample.offset), sample.uncertainty + 1e-9);  // 1 ns: rounding only
  const auto all = measured->gather({sample.offset, sample.uncertainty});
  for (std::size_t rank = 1; rank < all.size(); ++rank)
    std::printf("rank %zu: measured offset %.3g s, uncertainty %.3g s\n", rank, all[rank][0], all[rank][1]);
}

TEST(MpiExec, ProgramForOtherRankCountIsRejectedOnEveryRank) {
  const auto program = schedule::build_mgrit(small_spec(world->size() + 1, 12, 1, 1));
  try {
    check_run(*world, program, ExecOptions{});
    FAIL() << "no error";
  } catch (const AgreedError& error) {
    EXPECT_EQ(error.reporter, 0);
  }
}

}  // namespace
}  // namespace plait::executor

int main(int argc, char** argv) { return plait::executor::testing::run_mpi_tests(argc, argv, plait::executor::world); }
