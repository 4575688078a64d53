// TorchBraid's layout of a step: the ends (input and loss, a GPT's embedding
// and head) on the first rank, buffer blocks beside them, and the replicas'
// gradients summed one parameter tensor at a time.
#include <gtest/gtest.h>

#include <numeric>

#include "error_text.hpp"
#include "pipeline_spec.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/memory.hpp"
#include "plait/schedule/reference.hpp"
#include "plait/schedule/validate.hpp"

namespace plait::schedule {
namespace {

using plait::testing::error_of;

BuildSpec mlp_spec(int layers, int ranks, int levels) {
  BuildSpec spec;
  spec.layers = layers;
  spec.ranks = ranks;
  spec.forward = {.levels = levels, .coarsening_factor = 2, .relax = Relax::F, .iterations = 2};
  spec.adjoint = spec.forward;
  spec.model.kind = "mlp";
  spec.model.width = 4;
  return spec;
}

// TorchBraid's GPT: a serial forward, a two-level adjoint, the ends on rank 0.
BuildSpec gpt_spec(int layers, int ranks, int replicas) {
  BuildSpec spec = plait::testing::pipeline_spec(layers, ranks, 1);
  spec.forward = {.levels = 1, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  spec.adjoint = {.levels = 2, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  spec.replicas = replicas;
  spec.model.vocab = 64;
  spec.ends_on_first_rank = true;
  return spec;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double out = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) out = std::max(out, std::abs(a[i] - b[i]));
  return out;
}

std::vector<Op> ops_of(const Program& program, int rank, OpKind kind) {
  std::vector<Op> found;
  for (const Section& section : program.rank_programs[rank].sections)
    for (const Op& op : section.ops)
      if (op.kind == kind) found.push_back(op);
  return found;
}

TEST(EndsOnFirstRank, GiveTheSameStepAsTheEndsOnTheirBlocksRanks) {
  for (const auto& [kind, levels] : {std::pair<std::string, int>{"mgrit", 2}, {"mgrit", 3}, {"serial", 1}}) {
    BuildSpec spec = mlp_spec(16, 3, levels);
    const ReferenceModel model(spec.model, spec.layers);
    const ReferenceRun split = run_reference(build_kind(kind, spec), model);
    spec.ends_on_first_rank = true;
    const Program program = build_kind(kind, spec);
    SCOPED_TRACE(kind + " L" + std::to_string(levels));
    ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
    EXPECT_TRUE(program.ends_on_first_rank);
    // The loss runs on rank 0, on the output state the last rank sends it, and the
    // loss gradient goes back.
    ASSERT_EQ(ops_of(program, 0, OpKind::loss).size(), 1u);
    EXPECT_TRUE(ops_of(program, 2, OpKind::loss).empty());
    const Buffer output{Space::u, 0, spec.layers}, seed{Space::w, 0, spec.layers};
    const auto sends = ops_of(program, 2, OpKind::send);
    EXPECT_TRUE(std::any_of(sends.begin(), sends.end(), [&](const Op& op) { return op.a == output && op.peer == 0; }));
    const auto back = ops_of(program, 0, OpKind::send);
    EXPECT_TRUE(std::any_of(back.begin(), back.end(), [&](const Op& op) { return op.a == seed && op.peer == 2; }));
    const ReferenceRun run = run_reference(program, model);
    EXPECT_EQ(run.loss, split.loss);
    EXPECT_LE(max_difference(run.final_state, split.final_state), 0.0);
    for (int block = 0; block < spec.layers; ++block)
      EXPECT_LE(max_difference(run.gradients[block], split.gradients[block]), 0.0) << "block " << block;
  }
}

TEST(EndsOnFirstRank, PutTheEmbeddingAndTheHeadOnEachReplicasFirstRank) {
  const Program program = build_mgrit(gpt_spec(8, 2, 2));
  ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  const std::int64_t d = 32, vocab = 64, seq = 8;
  for (int rank = 0; rank < program.ranks; ++rank) {
    const bool first = rank % 2 == 0;
    EXPECT_EQ(ends_held(program, rank).first, first) << "rank " << rank;
    EXPECT_EQ(ends_held(program, rank).last, first) << "rank " << rank;
    // The tied output layer is the word table itself: held once.
    EXPECT_EQ(end_parameter_bytes(program, rank), first ? (vocab * d + seq * d + 2 * d) * 4 : 0) << "rank " << rank;
    EXPECT_EQ(ops_of(program, rank, OpKind::loss).size(), first ? 1u : 0u) << "rank " << rank;
  }
}

TEST(BufferBlocks, AreHeldTrainedAndKeptWithTheEnds) {
  BuildSpec spec = gpt_spec(8, 2, 1);
  const Program plain = build_mgrit(spec);
  spec.model.buffer_blocks = 2;
  const Program program = build_mgrit(spec);
  ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  const std::int64_t block = block_parameter_count(program.model) * 4;
  EXPECT_EQ(held_buffer_blocks(program, 0), 4);
  EXPECT_EQ(held_buffer_blocks(program, 1), 0);
  EXPECT_EQ(end_parameter_bytes(program, 0), end_parameter_bytes(plain, 0) + 4 * block);
  const auto memory = estimate_memory(program), plain_memory = estimate_memory(plain);
  EXPECT_EQ(memory[0].kept_graphs - plain_memory[0].kept_graphs, 4 * graph_bytes(micro_batch_model(program)));
  EXPECT_EQ(memory[1].total(), plain_memory[1].total());
  // The optimizer step updates them with the rest of rank 0's parameters.
  EXPECT_EQ(ops_of(program, 0, OpKind::update).at(0).bytes - ops_of(plain, 0, OpKind::update).at(0).bytes, 4 * block);
}

TEST(PerTensorGradientSums, SumEachTensorOfTheRanksBlocksAndEndsInFp32) {
  BuildSpec spec = gpt_spec(8, 2, 2);
  spec.model.dtype = "bf16";
  spec.model.buffer_blocks = 1;
  spec.dp_per_tensor = true;
  const Program program = build_mgrit(spec);
  ASSERT_TRUE(find_problems(program).empty()) << find_problems(program).front().to_string();
  const std::int64_t d = 32, hidden = 64, vocab = 64, seq = 8;
  const std::int64_t block = block_parameter_count(program.model);
  for (int rank = 0; rank < program.ranks; ++rank) {
    const auto sums = ops_of(program, rank, OpKind::grad_allreduce);
    ASSERT_EQ(sums.size(), 1u);
    const Op& sum = sums.front();
    EXPECT_TRUE(sum.per_tensor);
    EXPECT_FALSE(sum.overlap);
    const std::vector<std::int64_t> tensors = gradient_tensor_elements(program, rank, sum);
    const std::int64_t elements = std::accumulate(tensors.begin(), tensors.end(), std::int64_t{0});
    EXPECT_EQ(sum.bytes, 4 * elements) << "fp32 gradients, whatever the model's dtype";
    const bool ends = rank % 2 == 0;
    // 12 tensors a block (two LayerNorms, q/k/v, projection, MLP up and down, with biases);
    // rank 0 adds word and position tables, 2 buffer blocks and the final LayerNorm.
    EXPECT_EQ(tensors.size(), std::size_t(12 * sum.span + (ends ? 2 + 2 * 12 + 2 : 0))) << "rank " << rank;
    EXPECT_EQ(elements, sum.span * block + (ends ? vocab * d + seq * d + 2 * block + 2 * d : 0)) << "rank " << rank;
    EXPECT_EQ(tensors.at(2), 3 * d * d);  // q, k, v
    EXPECT_EQ(tensors.at(8), hidden * d);  // MLP up
  }
}

TEST(TorchBraidLayout, RoundTripsThroughJson) {
  BuildSpec spec = gpt_spec(8, 2, 2);
  spec.model.buffer_blocks = 2;
  spec.dp_per_tensor = true;
  const Program program = build_mgrit(spec);
  const Program read = parse_program(dump_program(program));
  EXPECT_EQ(read, program);
  EXPECT_TRUE(read.ends_on_first_rank);
  EXPECT_EQ(read.model.buffer_blocks, 2);
}

TEST(TorchBraidLayout, BadSettingsAreOneLineErrors) {
  BuildSpec pipeline = plait::testing::pipeline_spec(8, 2, 2);
  pipeline.ends_on_first_rank = true;
  EXPECT_EQ(error_of([&] { build_kind("1f1b", pipeline); }),
            "ends: a pipeline runs the loss on its last stage: only mgrit and serial put the ends on the first rank "
            "(TorchBraid's layout)");
  BuildSpec overlapped = gpt_spec(8, 2, 2);
  overlapped.dp_per_tensor = overlapped.dp_overlap = true;
  EXPECT_EQ(error_of([&] { build_mgrit(overlapped); }),
            "dp-allreduce: per-tensor all-reduces block the rank (TorchBraid's): they do not overlap (--dp-overlap)");
  BuildSpec sharded = gpt_spec(8, 2, 2);
  sharded.dp_per_tensor = true;
  sharded.model.tensor_parallel = 2;
  EXPECT_EQ(error_of([&] { build_mgrit(sharded); }),
            "dp-allreduce: per-tensor all-reduces model TorchBraid, which has no tensor parallelism");
  BuildSpec stack = plait::testing::pipeline_spec(8, 2, 1);
  stack.model.buffer_blocks = 2;
  EXPECT_EQ(error_of([&] { build_mgrit(stack); }),
            "model.buffer_blocks: buffer blocks sit beside a full step's embedding and head: they need a vocabulary");
}

TEST(TorchBraidLayout, ValidationRefusesAPerTensorSumThatIsNotABlockingGradientSum) {
  BuildSpec spec = gpt_spec(8, 2, 2);
  spec.dp_per_tensor = true;
  Program program = build_mgrit(spec);
  for (Section& section : program.rank_programs[1].sections)
    for (Op& op : section.ops)
      if (op.kind == OpKind::grad_allreduce) op.overlap = true;
  const auto problems = find_problems(program);
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems.front().to_string().find("grad_allreduce overlapped cannot be per_tensor"), std::string::npos)
      << problems.front().to_string();
}

}  // namespace
}  // namespace plait::schedule
