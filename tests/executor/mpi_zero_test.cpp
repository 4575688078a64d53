// Sharded data parallelism (ZeRO stages 1-3) on real MPI ranks (ctest runs
// it through mpiexec with 6 ranks): for a GPT step and a block stack, 1F1B
// and MGRIT, 2 and 3 replicas, the sharded run gives the unsharded
// data-parallel run's loss, its gradients on the elements each rank owns,
// and, over three AdamW steps, its parameters; the first step's loss is the
// serial step's too. Each rank updates only its shard, so a lost all_gather
// leaves the other shards stale and shows up here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "plait/executor/exec.hpp"
#include "mpi_test_main.hpp"
#include "plait/executor/mpi_world.hpp"
#include "plait/executor/serial_baseline.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "small_programs.hpp"

namespace plait::executor {
namespace {

using schedule::Op;
using schedule::OpKind;
using schedule::Program;

World* world = nullptr;

struct Case {
  std::string kind;  // "1f1b" or "mgrit"
  bool gpt;          // a full GPT step (vocab > 0, AdamW update) or a block stack
  int stages, replicas, zero;
  std::string name() const {
    return kind + (gpt ? " gpt" : " blocks") + ", " + std::to_string(stages) + " stage(s) x " +
           std::to_string(replicas) + " replicas, ZeRO " + std::to_string(zero);
  }
};

// The spec of a case without sharding: small blocks, one sample a micro-batch.
schedule::BuildSpec base_spec(const Case& c) {
  schedule::BuildSpec spec = c.kind == "mgrit" ? test_support::small_spec(c.stages, 8, 5, 5)  // converged
                                               : test_support::small_spec(c.stages, 4, 1, 1);
  spec.micro_batches = c.kind == "mgrit" ? 1 : 2;
  spec.model.batch = spec.micro_batches * c.replicas;
  spec.model.vocab = c.gpt ? 64 : 0;
  spec.replicas = c.replicas;
  return spec;
}

// The sharded Program and its unsharded reference, whose grad_allreduce ops
// pair one to one with the sharded gradient collectives (at stage 3 the
// gradients are summed a block at a time, as build_sharded does).
std::pair<Program, Program> programs(const Case& c) {
  schedule::BuildSpec sharded = base_spec(c), reference = base_spec(c);
  sharded.zero_stage = c.zero;
  sharded.prefetch = c.zero == 3 && c.kind != "mgrit";
  if (c.zero == 3) {
    reference.dp_overlap = true;
    reference.bucket_bytes = 1;
  }
  return {schedule::build_kind(c.kind, sharded), schedule::build_kind(c.kind, reference)};
}

std::vector<Op> gradient_sums(const Program& program, int rank) {
  std::vector<Op> sums;
  for (const auto& section : program.rank_programs.at(rank).sections)
    for (const Op& op : section.ops)
      if (op.kind == OpKind::grad_allreduce || op.kind == OpKind::reduce_scatter) sums.push_back(op);
  return sums;
}

bool has_loss(const Program& program, int rank) {
  for (const auto& section : program.rank_programs.at(rank).sections)
    for (const Op& op : section.ops)
      if (op.kind == OpKind::loss) return true;
  return false;
}

std::vector<double> floats(const std::vector<std::byte>& bytes) {
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return {values.begin(), values.end()};
}

std::vector<double> slice(const std::vector<double>& values, std::size_t first, std::size_t end) {
  return {values.begin() + long(std::min(first, values.size())), values.begin() + long(std::min(end, values.size()))};
}

// One step of `program` on `backend` (every rank of `group` at once); the batch's loss on every rank.
double run_step(World& group, const Program& program, TorchBackend& backend) {
  backend.zero_gradients();
  {
    auto comm = group.make_comm();
    schedule::interpret(program, group.rank(), backend, *comm);
  }
  const bool loss_here = has_loss(program, group.rank());
  return group.sum_all({loss_here ? backend.last_loss() : 0.0}).at(0);
}

// What one rank found after a step, against the unsharded run.
struct RankErrors {
  double owned_gradient = 0;   // worst relative error over its shard of each gradient sum
  double unowned_gradient = 0; // largest |value| outside its shard (0 after a reduce-scatter)
  double parameters = 0;       // worst relative error of its parameters (stage 3: its shards, and the ends' buffer)
  double moved = 0;            // largest change of its parameters in this step (> 0 when the update ran)
  std::vector<double> packed() const { return {owned_gradient, unowned_gradient, parameters, moved}; }
};

constexpr int steps = 3;
constexpr double learning_rate = 1e-3;

void check_case(World& group, const Case& c) {
  const auto [sharded, reference] = programs(c);
  ASSERT_EQ(sharded.ranks, group.size());
  ASSERT_EQ(sharded.zero_stage, c.zero);
  const int rank = group.rank();
  TorchBackend mine(sharded, rank), theirs(reference, rank);
  mine.set_learning_rate(learning_rate);
  theirs.set_learning_rate(learning_rate);
  const std::vector<Op> sums = gradient_sums(sharded, rank), reference_sums = gradient_sums(reference, rank);
  ASSERT_EQ(sums.size(), reference_sums.size());
  for (std::size_t i = 0; i < sums.size(); ++i) {
    ASSERT_EQ(sums[i].kind, c.zero >= 2 ? OpKind::reduce_scatter : OpKind::grad_allreduce);
    ASSERT_EQ(sums[i].block, reference_sums[i].block);
    ASSERT_EQ(sums[i].span, reference_sums[i].span);
  }
  const std::size_t member = std::size_t(schedule::replica_of(sharded, rank));
  std::optional<double> serial_loss;
  if (group.rank() == 0) serial_loss = SerialBaseline(sharded.model, sharded.layers).run_step();

  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<double>> before;
    for (const Op& op : sums) before.push_back(floats(mine.parameter_bytes(op)));
    const double loss = run_step(group, sharded, mine);
    const double reference_loss = run_step(group, reference, theirs);
    RankErrors errors;
    for (std::size_t i = 0; i < sums.size(); ++i) {
      const auto gradient = floats(mine.gradient_bytes(sums[i]));
      const auto expected = floats(theirs.gradient_bytes(reference_sums[i]));
      ASSERT_EQ(gradient.size(), expected.size()) << "rank " << rank;
      const std::size_t shard = (gradient.size() + c.replicas - 1) / c.replicas;
      const std::size_t first = member * shard, end = first + shard;
      errors.owned_gradient = std::max(errors.owned_gradient,
                                       relative_error(slice(gradient, first, end), slice(expected, first, end)));
      for (std::size_t k = 0; k < gradient.size(); ++k)
        if (k < first || k >= end) errors.unowned_gradient = std::max(errors.unowned_gradient, std::abs(gradient[k]));
      const auto parameters = floats(mine.parameter_bytes(sums[i]));
      const auto expected_parameters = floats(theirs.parameter_bytes(reference_sums[i]));
      ASSERT_EQ(parameters.size(), expected_parameters.size());
      // Stage 3 gathers a block's parameters before its next step only; the
      // ends' buffer (with its blocks) is gathered after the update.
      const bool whole = c.zero < 3 || schedule::carries_end_gradients(sharded.model, sums[i], c.replicas);
      errors.parameters = std::max(errors.parameters,
                                   whole ? relative_error(parameters, expected_parameters)
                                         : relative_error(slice(parameters, first, end), slice(expected_parameters, first, end)));
      for (std::size_t k = 0; k < parameters.size(); ++k)
        errors.moved = std::max(errors.moved, std::abs(parameters[k] - before[i][k]));
    }
    const auto all = group.gather(errors.packed());
    if (group.rank() != 0) continue;
    SCOPED_TRACE(c.name() + ", step " + std::to_string(step + 1));
    EXPECT_NEAR(loss, reference_loss, 1e-5 * reference_loss);
    if (step == 0) {
      EXPECT_NEAR(loss, *serial_loss, 1e-5 * *serial_loss);
      if (c.gpt) {
        EXPECT_NEAR(loss, std::log(64.0), 0.1);
      }
    }
    for (std::size_t r = 0; r < all.size(); ++r) {
      SCOPED_TRACE("rank " + std::to_string(r));
      EXPECT_LT(all[r][0], 1e-4) << "gradients on the rank's shard";
      if (c.zero >= 2) {
        EXPECT_EQ(all[r][1], 0.0) << "gradients outside the rank's shard (freed by the reduce-scatter)";
      } else {
        EXPECT_GT(all[r][1], 0.0) << "stage 1 all-reduces: every element summed";
      }
      EXPECT_LT(all[r][2], 1e-5) << "parameters";
      if (c.gpt) {
        EXPECT_GT(all[r][3], 0.1 * learning_rate) << "the update moved the parameters";
      } else {
        EXPECT_EQ(all[r][3], 0.0) << "a block stack has no update op";
      }
    }
  }
}

// Every case whose ranks fit in the world, on the world's first ranks.
TEST(MpiZero, ShardedEqualsUnshardedDataParallelAndSerial) {
  int run = 0;
  for (const auto& [stages, replicas] : {std::pair{2, 2}, {1, 3}, {2, 3}}) {
    auto group = make_mpi_subworld(world->rank() < stages * replicas);
    if (stages * replicas > world->size() || !group) continue;
    for (const std::string kind : {"1f1b", "mgrit"})
      for (const bool gpt : {true, false})
        for (int zero = 1; zero <= 3; ++zero) {
          check_case(*group, Case{kind, gpt, stages, replicas, zero});
          ++run;
        }
  }
  if (world->size() >= 6 && world->rank() == 0) {
    EXPECT_EQ(run, 36);
  }
}

// plait-exec's check against the serial step: after a reduce-scatter each
// replica reports its shard of the gradients, and they add up.
TEST(MpiZero, ExecCheckSerialAddsTheShards) {
  for (int zero = 1; zero <= 3; ++zero) {
    const auto program = programs(Case{"1f1b", true, 2, 2, zero}).first;
    auto group = make_mpi_subworld(world->rank() < program.ranks);
    if (program.ranks > world->size() || !group) continue;
    const auto report = execute(*group, program, test_support::check_options());
    if (group->rank() != 0) continue;
    SCOPED_TRACE("ZeRO " + std::to_string(zero));
    ASSERT_TRUE(report.max_rel_err_output && report.max_rel_err_grad);
    EXPECT_LT(*report.max_rel_err_output, 1e-5);
    EXPECT_LT(*report.max_rel_err_grad, 1e-4);
    EXPECT_NEAR(report.loss, *report.serial_loss, 1e-5 * *report.serial_loss);
    EXPECT_EQ(report.gradients.size(), 6u);  // 4 blocks, the embeddings, the final LayerNorm
  }
}

}  // namespace
}  // namespace plait::executor

int main(int argc, char** argv) { return plait::executor::testing::run_mpi_tests(argc, argv, plait::executor::world); }
