// The torch backend on one rank: its step, adjoint and gradients against
// finite differences and against the serial baseline's autograd.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "plait/executor/serial_baseline.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace plait::executor {
namespace {

using schedule::Buffer;
using schedule::Op;
using schedule::OpKind;
using schedule::Space;

schedule::ModelDesc small_model(const std::string& dtype = "fp64") {
  schedule::ModelDesc model;
  model.d_model = 16;
  model.heads = 2;
  model.seq = 4;
  model.batch = 2;
  model.mlp_ratio = 2;
  model.dtype = dtype;
  model.tstop = 1.0;
  return model;
}

// A one-rank Program with no ops: enough to construct a backend.
schedule::Program empty_program(const schedule::ModelDesc& model, int layers) {
  schedule::Program program;
  program.layers = layers;
  program.ranks = 1;
  program.model = model;
  program.partition = {0, layers};
  program.rank_programs.resize(1);
  return program;
}

Buffer u(int point) { return {Space::u, 0, point}; }
Buffer w(int point) { return {Space::w, 0, point}; }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

std::vector<double> random_vector(std::size_t size, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal;
  std::vector<double> values(size);
  for (double& v : values) v = normal(generator);
  return values;
}

TEST(TorchBackend, StepAdjointMatchesFiniteDifferencesOfTheStep) {
  const auto program = empty_program(small_model(), 4);
  TorchBackend backend(program, 0);
  const auto n = std::size_t(backend.state_elements());
  const auto x = random_vector(n, 1), direction = random_vector(n, 2), adjoint = random_vector(n, 3);
  const double eps = 1e-6;
  std::vector<double> plus(n), minus(n);
  for (std::size_t i = 0; i < n; ++i) {
    plus[i] = x[i] + eps * direction[i];
    minus[i] = x[i] - eps * direction[i];
  }
  backend.set_state(u(0), x);
  backend.set_state(u(1), plus);
  backend.set_state(u(2), minus);
  backend.set_state(w(0), adjoint);
  // span 2: a coarse step (step size 2h) with block 2's parameters.
  backend.compute(Op{.kind = OpKind::step, .dst = u(3), .a = u(1), .level = 0, .block = 2, .span = 2});
  backend.compute(Op{.kind = OpKind::step, .dst = u(4), .a = u(2), .level = 0, .block = 2, .span = 2});
  backend.compute(Op{.kind = OpKind::step_adjoint, .dst = w(1), .a = w(0), .c = u(0), .block = 2, .span = 2});
  const auto phi_plus = backend.state(u(3)), phi_minus = backend.state(u(4));
  double directional = 0;
  for (std::size_t i = 0; i < n; ++i) directional += adjoint[i] * (phi_plus[i] - phi_minus[i]) / (2 * eps);
  const double vjp = dot(backend.state(w(1)), direction);
  EXPECT_NEAR(vjp, directional, 1e-7 * std::max(1.0, std::abs(directional)));
}

// step_adjoint right after a step from the same state reuses that step's
// graph; a state written since (here: re-set) forces a recomputation. Both,
// and a backend that never keeps graphs, must agree.
TEST(TorchBackend, AdjointOnAKeptGraphEqualsARecomputedOne) {
  const auto program = empty_program(small_model(), 3);
  TorchBackend kept(program, 0), recomputed(program, 0);
  recomputed.set_keep_step_graphs(false);
  const auto x = random_vector(std::size_t(kept.state_elements()), 4);
  const auto adjoint = random_vector(x.size(), 5);
  const Op step{.kind = OpKind::step, .dst = u(1), .a = u(0), .block = 1, .span = 1};
  const Op adjoint_step{.kind = OpKind::step_adjoint, .dst = w(0), .a = w(1), .c = u(0), .block = 1, .span = 1,
                        .accumulate_grad = true};
  for (TorchBackend* backend : {&kept, &recomputed}) {
    backend->set_state(u(0), x);
    backend->set_state(w(1), adjoint);
    backend->compute(step);
    backend->compute(adjoint_step);
    backend->compute(adjoint_step);  // twice: the kept graph survives its first use
  }
  EXPECT_EQ(kept.state(w(0)), recomputed.state(w(0)));
  const auto g_kept = kept.gradient(1), g_recomputed = recomputed.gradient(1);
  for (std::size_t i = 0; i < g_kept.size(); ++i) ASSERT_NEAR(g_kept[i], g_recomputed[i], 1e-12);
  // A new tensor in u(0) (other values) must not reuse the old graph.
  auto shifted = x;
  for (double& v : shifted) v += 0.5;
  kept.set_state(u(0), shifted);
  recomputed.set_state(u(0), shifted);
  kept.compute(adjoint_step);
  recomputed.compute(adjoint_step);
  EXPECT_EQ(kept.state(w(0)), recomputed.state(w(0)));
}

TEST(TorchBackend, StepAddsTheOptionalRightHandSide) {
  const auto program = empty_program(small_model(), 2);
  TorchBackend backend(program, 0);
  backend.fill_random(u(0), 5);
  backend.fill_random(Buffer{Space::g, 0, 1}, 6);
  backend.compute(Op{.kind = OpKind::step, .dst = u(1), .a = u(0), .block = 0, .span = 1});
  backend.compute(Op{.kind = OpKind::step, .dst = u(2), .a = u(0), .b = Buffer{Space::g, 0, 1}, .block = 0, .span = 1});
  const auto plain = backend.state(u(1)), shifted = backend.state(u(2)), g = backend.state(Buffer{Space::g, 0, 1});
  for (std::size_t i = 0; i < plain.size(); ++i) ASSERT_NEAR(shifted[i], plain[i] + g[i], 1e-12);
}

TEST(TorchBackend, SerialProgramMatchesTheAutogradBaseline) {
  schedule::BuildSpec spec;
  spec.layers = 4;
  spec.ranks = 1;
  spec.model = small_model("fp32");
  auto program = schedule::build_serial(spec);
  program.model.dtype = "fp64";  // one rank sends nothing, so message sizes do not matter
  spec.model.dtype = "fp64";
  TorchBackend backend(program, 0);
  SerialBaseline serial(spec.model, spec.layers);
  serial.run_step();
  struct NoComm : schedule::Comm {
    void send(const Op&, std::span<const std::byte>) override { FAIL(); }
    std::vector<std::byte> recv(const Op&) override { return {}; }
    double allreduce_sum(const Op&, std::span<const int>, double v) override { return v; }
  } comm;
  schedule::interpret(program, 0, backend, comm);
  EXPECT_EQ(backend.gradient_blocks(), (std::vector<int>{0, 1, 2, 3}));
  for (int block = 0; block < spec.layers; ++block) {
    const auto mine = backend.gradient(block), reference = serial.gradient(block);
    ASSERT_EQ(mine.size(), reference.size());
    for (std::size_t i = 0; i < mine.size(); ++i)
      ASSERT_NEAR(mine[i], reference[i], 1e-10 * (1 + std::abs(reference[i]))) << "block " << block << " #" << i;
  }
  const auto output = serial.output();
  const auto last = backend.state(u(spec.layers));
  for (std::size_t i = 0; i < output.size(); ++i) ASSERT_NEAR(last[i], output[i], 1e-12);
}

// The GPT step's update op is AdamW: at the default learning rate 0 the
// weights stay as they were (a measured step); at lr its next step moves
// every weight by lr against its gradient's sign (m / (sqrt(v) + eps) =
// g / (|g| + eps)), plus the decay of lr * 0.01 * w on matrices.
TEST(TorchBackend, GptUpdateIsAdamAndLeavesWeightsAtLearningRateZero) {
  schedule::BuildSpec spec;
  spec.layers = 2;
  spec.ranks = 1;
  spec.model = small_model("fp64");
  spec.model.dtype = "fp32";
  spec.model.vocab = 32;
  const auto program = schedule::build_serial(spec);
  ASSERT_EQ(program.rank_programs[0].sections.back().ops.back().kind, OpKind::update);
  struct NoComm : schedule::Comm {
    void send(const Op&, std::span<const std::byte>) override { FAIL(); }
    std::vector<std::byte> recv(const Op&) override { return {}; }
    double allreduce_sum(const Op&, std::span<const int>, double v) override { return v; }
  } comm;
  TorchBackend backend(program, 0);
  const auto initial = backend.parameters(1);
  schedule::interpret(program, 0, backend, comm);
  EXPECT_EQ(backend.parameters(1), initial);
  EXPECT_NEAR(backend.last_loss(), std::log(32.0), 0.1);
  const double lr = 1e-3;
  const auto gradient = backend.gradient(1);
  backend.set_learning_rate(lr);
  backend.zero_gradients();  // the same gradient again: Adam's moments stay g and g^2
  schedule::interpret(program, 0, backend, comm);
  const auto updated = backend.parameters(1);
  int moved = 0;
  for (std::size_t i = 0; i < initial.size(); ++i) {
    if (gradient[i] == 0) continue;
    const double expected = -lr * gradient[i] / (std::abs(gradient[i]) + 1e-8);  // Adam's eps 1e-8
    ASSERT_NEAR(updated[i] - initial[i], expected, 1e-5 * std::abs(initial[i]) + 2e-7) << "#" << i;
    ++moved;
  }
  EXPECT_GT(moved, int(initial.size()) / 2);
}

TEST(TorchBackend, ParametersDependOnSeedAndBlockOnly) {
  const auto model = small_model("fp32");
  auto one_rank = empty_program(model, 6);
  auto two_ranks = one_rank;
  two_ranks.ranks = 2;
  two_ranks.partition = {0, 3, 6};
  two_ranks.rank_programs.resize(2);
  TorchBackend a(one_rank, 0), b(two_ranks, 1);
  EXPECT_EQ(a.parameters(4), b.parameters(4));
  EXPECT_NE(a.parameters(4), a.parameters(5));
  auto reseeded = one_rank;
  reseeded.model.seed = 2;
  TorchBackend c(reseeded, 0);
  EXPECT_NE(a.parameters(4), c.parameters(4));
}

TEST(TorchBackend, MessagesRoundTripThroughBytes) {
  const auto program = empty_program(small_model("fp32"), 2);
  TorchBackend sender(program, 0), receiver(program, 0);
  sender.fill_random(u(1), 9);
  const auto bytes = sender.bytes_of(u(1));
  EXPECT_EQ(std::int64_t(bytes.size()), schedule::state_bytes(program.model));
  receiver.assign_bytes(u(1), bytes);
  EXPECT_EQ(receiver.state(u(1)), sender.state(u(1)));
  EXPECT_THROW(receiver.assign_bytes(u(2), bytes.subspan(4)), Error);
}

TEST(TorchBackend, NormAndRegistersAccumulate) {
  const auto program = empty_program(small_model(), 2);
  TorchBackend backend(program, 0);
  backend.fill_random(u(0), 3);
  const Buffer reg{Space::reg, 0, 0};
  backend.write_register(reg, 1.5);
  backend.compute(Op{.kind = OpKind::norm_sq, .dst = reg, .a = u(0)});
  const auto x = backend.state(u(0));
  EXPECT_NEAR(backend.read_register(reg), 1.5 + dot(x, x), 1e-9);
  backend.compute(Op{.kind = OpKind::zero, .dst = reg});
  EXPECT_EQ(backend.read_register(reg), 0.0);
}

TEST(TorchBackend, ReadBeforeWriteNamesTheBuffer) {
  const auto program = empty_program(small_model(), 2);
  TorchBackend backend(program, 0);
  try {
    backend.compute(Op{.kind = OpKind::copy, .dst = u(1), .a = u(0)});
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(), "buffer u[0][0] is read before it is written");
  }
}

// A stand-in for the other shard of a group of two: it holds what this one
// does, so a sum doubles; it counts the sums a shard's ops ask for.
class CountingGroupSum final : public GroupSum {
 public:
  explicit CountingGroupSum(int* sums) : sums_(sums) {}
  int size() const override { return 2; }
  void sum(std::span<float> values) override { double_each(values); }
  void sum(std::span<double> values) override { double_each(values); }

 private:
  template <typename T>
  void double_each(std::span<T> values) {
    ++*sums_;
    for (T& value : values) value += value;
  }
  int* sums_;
};

// A Program of one stage over two tensor-parallel shards (sequence parallel or not).
schedule::Program two_shard_program(bool sequence_parallel) {
  auto program = empty_program(small_model(), 2);
  program.model.tensor_parallel = 2;
  program.model.sequence_parallel = sequence_parallel;
  program.ranks = 2;
  program.rank_programs.resize(2);
  return program;
}

// A random state u[0] and adjoint w[1] for a step and its adjoint.
void fill_state_and_adjoint(TorchBackend& backend) {
  backend.fill_random(u(0), 3);
  backend.fill_random(w(1), 4);
}

// A tensor-parallel shard sums its block's partial outputs over the group as
// often as the Program says (schedule::tensor_allreduces): 2 a forward step, 2
// a backward step, 4 one that recomputes its forward; a message carries half
// a state and is gathered by one sum.
TEST(TorchBackend, TensorParallelShardSumsAsOftenAsTheProgramCounts) {
  auto program = two_shard_program(false);
  EXPECT_THROW(TorchBackend(program, 1), Error);  // a shard needs its group
  int sums = 0;
  TorchBackend backend(program, 1, "cpu", std::make_unique<CountingGroupSum>(&sums));
  fill_state_and_adjoint(backend);
  const Op step{.kind = OpKind::step, .dst = u(1), .a = u(0), .block = 1, .span = 1, .graph = schedule::GraphUse::keep};
  Op adjoint{.kind = OpKind::step_adjoint, .dst = w(0), .a = w(1), .c = u(0), .block = 1, .span = 1, .accumulate_grad = true};
  for (const Op& op : {step, adjoint}) {
    sums = 0;
    backend.compute(op);
    EXPECT_EQ(sums, schedule::tensor_allreduces(program, op)) << to_string(op.kind);
    EXPECT_EQ(sums, 2);
  }
  adjoint.graph = schedule::GraphUse::recompute;
  sums = 0;
  backend.compute(adjoint);
  EXPECT_EQ(sums, schedule::tensor_allreduces(program, adjoint));
  EXPECT_EQ(sums, 4);
  // Shard 1's block holds half the heads and half the MLP, and LayerNorms whole.
  const std::int64_t d = 16, hidden = 32;
  EXPECT_EQ(backend.parameters(1).size(), std::size_t(4 * d + (3 * d * d + 3 * d + d * d) / 2 + d + (2 * hidden * d + hidden) / 2 + d));
  const auto message = backend.bytes_of(u(1));
  EXPECT_EQ(message.size(), std::size_t(backend.state_elements()) * sizeof(double) / 2);
  const std::vector<std::byte> part(message.begin(), message.end());
  sums = 0;
  backend.assign_bytes(u(2), part);
  EXPECT_EQ(sums, 1);
  // The part lands in shard 1's place; the stand-in's sum doubles it.
  const auto sent = backend.state(u(1)), gathered = backend.state(u(2));
  const std::size_t half = sent.size() / 2;
  for (std::size_t i = 0; i < sent.size(); ++i) ASSERT_EQ(gathered[i], i < half ? 0.0 : 2 * sent[i]);
}

// With sequence parallelism a shard sums more often than the Program prices
// (GroupSum only sums; executor/README.md): a forward step all-gathers two
// normed chunks and its output and reduce-scatters two partial sums (5); a
// backward step adds the input's and the LayerNorms' gradient sums (6).
TEST(TorchBackend, SequenceParallelShardSumsPerStep) {
  const auto program = two_shard_program(true);
  int sums = 0;
  TorchBackend backend(program, 1, "cpu", std::make_unique<CountingGroupSum>(&sums));
  fill_state_and_adjoint(backend);
  const Op step{.kind = OpKind::step, .dst = u(1), .a = u(0), .block = 1, .span = 1, .graph = schedule::GraphUse::keep};
  Op adjoint{.kind = OpKind::step_adjoint, .dst = w(0), .a = w(1), .c = u(0), .block = 1, .span = 1, .accumulate_grad = true};
  for (const auto& [op, expected] : {std::pair{step, 5}, {adjoint, 6}}) {
    sums = 0;
    backend.compute(op);
    EXPECT_EQ(sums, expected) << to_string(op.kind);
  }
  adjoint.graph = schedule::GraphUse::recompute;
  sums = 0;
  backend.compute(adjoint);
  EXPECT_EQ(sums, 11);
}

TEST(TorchBackend, RejectsModelsItCannotRun) {
  auto model = small_model();
  model.kind = "linear";
  EXPECT_THROW(check_runnable(model, "cpu"), Error);
  model = small_model();
  model.heads = 3;
  try {
    check_runnable(model, "cpu");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.why(), "d_model 16 is not divisible by heads 3");
  }
  EXPECT_THROW(check_runnable(small_model("fp8"), "cpu"), Error);
  EXPECT_THROW(check_runnable(small_model("bf16"), "cpu"), Error);
  EXPECT_THROW(check_runnable(small_model(), "tpu"), Error);
  if (!cuda_available()) {
    try {
      check_runnable(small_model(), "cuda");
      FAIL() << "no error";
    } catch (const Error& error) {
      EXPECT_EQ(error.why(), "this libtorch sees no CUDA device");
    }
  }
}

}  // namespace
}  // namespace plait::executor
