// Executor overheads (issue 4), at d_model 256, seq 128, batch 8, fp32, 1 thread:
// - the interpreter's cost per op, and the torch backend's bookkeeping per op,
//   next to one block step (counter `fraction_of_block_step`; target < 2 %);
// - the serial baseline against a plain LibTorch loop over the same blocks
//   (compare BM_SerialBaseline with BM_PlainLibTorchLoop; target within 5 %).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "plait/executor/serial_baseline.hpp"
#include "plait/executor/torch_backend.hpp"

namespace {

using plait::schedule::Buffer;
using plait::schedule::Op;
using plait::schedule::OpKind;
using plait::schedule::Space;

constexpr int bench_layers = 8;

plait::schedule::ModelDesc bench_model() {
  plait::schedule::ModelDesc model;
  model.d_model = 256;
  model.heads = 4;
  model.seq = 128;
  model.batch = 8;
  model.mlp_ratio = 4;
  model.dtype = "fp32";
  model.causal = true;
  return model;
}

plait::schedule::Program bench_program(int ops_per_section = 0) {
  plait::schedule::Program program;
  program.layers = bench_layers;
  program.model = bench_model();
  program.partition = {0, bench_layers};
  program.rank_programs.resize(1);
  if (ops_per_section > 0) {
    plait::schedule::Section section;
    section.name = "copies";
    for (int i = 0; i < ops_per_section; ++i)
      section.ops.push_back(Op{.kind = OpKind::copy, .dst = Buffer{Space::u, 0, 1 + i % 2}, .a = Buffer{Space::u, 0, 0}});
    program.rank_programs[0].sections.push_back(section);
  }
  return program;
}

// Does nothing: what is left is the interpreter's own loop and dispatch.
class NullBackend final : public plait::schedule::Backend {
 public:
  void compute(const Op& op) override { benchmark::DoNotOptimize(&op); }
  double read_register(const Buffer&) override { return 0; }
  void write_register(const Buffer&, double) override {}
  std::span<const std::byte> bytes_of(const Buffer&) override { return {}; }
  void assign_bytes(const Buffer&, std::span<const std::byte>) override {}
};

class NullComm final : public plait::schedule::Comm {
 public:
  void send(const Op&, std::span<const std::byte>) override {}
  std::vector<std::byte> recv(const Op&) override { return {}; }
  double allreduce_sum(const Op&, std::span<const int>, double value) override { return value; }
};

const Op forward_step{.kind = OpKind::step, .dst = Buffer{Space::u, 0, 1}, .a = Buffer{Space::u, 0, 0}, .block = 0, .span = 1};

// Seconds of one forward block step, measured once per process.
double block_step_seconds() {
  static const double seconds = [] {
    at::set_num_threads(1);
    plait::executor::TorchBackend backend(bench_program(), 0);
    backend.fill_random(Buffer{Space::u, 0, 0}, 1);
    backend.compute(forward_step);
    const int repeats = 5;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) backend.compute(forward_step);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats;
  }();
  return seconds;
}

// Interprets `program` (all ops alike) and reports seconds per op and that
// time as a fraction of one forward block step.
void run_per_op(benchmark::State& state, const plait::schedule::Program& program,
                plait::schedule::Backend& backend, plait::schedule::Comm& comm, int ops) {
  const double block_step = block_step_seconds();  // outside the timed loop
  double elapsed = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    plait::schedule::interpret(program, 0, backend, comm);
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double per_op = elapsed / (double(state.iterations()) * ops);
  state.SetItemsProcessed(state.iterations() * ops);
  state.counters["seconds_per_op"] = per_op;
  state.counters["block_step_s"] = block_step;
  state.counters["fraction_of_block_step"] = per_op / block_step;
}

void BM_BlockStepForward(benchmark::State& state) {
  at::set_num_threads(1);
  plait::executor::TorchBackend backend(bench_program(), 0);
  backend.fill_random(Buffer{Space::u, 0, 0}, 1);
  for (auto _ : state) backend.compute(forward_step);
}
BENCHMARK(BM_BlockStepForward)->Unit(benchmark::kMillisecond);

// Arg 1: the backend keeps the forward graph of the state (backward only, the
// executor's default); arg 0: every adjoint recomputes its forward step.
void BM_BlockStepAdjointWithGradient(benchmark::State& state) {
  at::set_num_threads(1);
  plait::executor::TorchBackend backend(bench_program(), 0);
  backend.set_keep_step_graphs(state.range(0) == 1);
  backend.fill_random(Buffer{Space::u, 0, 0}, 1);
  backend.fill_random(Buffer{Space::w, 0, 1}, 2);
  const Op adjoint{.kind = OpKind::step_adjoint, .dst = Buffer{Space::w, 0, 0}, .a = Buffer{Space::w, 0, 1},
                   .c = Buffer{Space::u, 0, 0}, .block = 0, .span = 1, .accumulate_grad = true};
  for (auto _ : state) backend.compute(adjoint);
}
BENCHMARK(BM_BlockStepAdjointWithGradient)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

// The interpreter's loop per op (null backend), as a fraction of a block step.
void BM_InterpreterPerOp(benchmark::State& state) {
  const int ops = 1000;
  const auto program = bench_program(ops);
  NullBackend backend;
  NullComm comm;
  run_per_op(state, program, backend, comm, ops);
}
BENCHMARK(BM_InterpreterPerOp);

// Interpreter plus the torch backend's bookkeeping (a copy op: map lookups
// and a tensor handle, no arithmetic) per op.
void BM_InterpreterWithTorchBackendPerOp(benchmark::State& state) {
  at::set_num_threads(1);
  const int ops = 1000;
  const auto program = bench_program(ops);
  plait::executor::TorchBackend backend(program, 0);
  backend.fill_random(Buffer{Space::u, 0, 0}, 1);
  NullComm comm;
  run_per_op(state, program, backend, comm, ops);
}
BENCHMARK(BM_InterpreterWithTorchBackendPerOp);

void BM_SerialBaseline(benchmark::State& state) {
  at::set_num_threads(1);
  plait::executor::SerialBaseline serial(bench_model(), bench_layers);
  for (auto _ : state) serial.run_step_async();
}
BENCHMARK(BM_SerialBaseline)->Unit(benchmark::kMillisecond)->MinTime(3.0);

// The same network written the way a LibTorch user would: a loop over blocks,
// loss, backward. Independent code: same shapes and arithmetic, own weights.
void BM_PlainLibTorchLoop(benchmark::State& state) {
  at::set_num_threads(1);
  const auto m = bench_model();
  const int64_t d = m.d_model, heads = m.heads, hd = d / heads, hidden = m.mlp_ratio * d;
  const double h = 1.0 / bench_layers;
  auto param = [](std::vector<int64_t> shape, double scale) { return (at::randn(shape) * scale).requires_grad_(); };
  struct Block { at::Tensor g1, b1, wqkv, bqkv, wo, bo, g2, b2, w1, c1, w2, c2; };
  std::vector<Block> blocks;
  for (int i = 0; i < bench_layers; ++i)
    blocks.push_back({at::ones({d}).requires_grad_(), at::zeros({d}).requires_grad_(),
                      param({3 * d, d}, 1 / std::sqrt(double(d))), param({3 * d}, 0.02),
                      param({d, d}, 1 / std::sqrt(double(d))), param({d}, 0.02),
                      at::ones({d}).requires_grad_(), at::zeros({d}).requires_grad_(),
                      param({hidden, d}, 1 / std::sqrt(double(d))), param({hidden}, 0.02),
                      param({d, hidden}, 1 / std::sqrt(double(hidden))), param({d}, 0.02)});
  const at::Tensor input = at::randn({m.batch, m.seq, d}), target = at::randn({m.batch, m.seq, d});
  const at::Tensor mask = at::full({m.seq, m.seq}, -INFINITY).triu(1);
  for (auto _ : state) {
    for (auto& b : blocks)
      for (auto* p : {&b.g1, &b.b1, &b.wqkv, &b.bqkv, &b.wo, &b.bo, &b.g2, &b.b2, &b.w1, &b.c1, &b.w2, &b.c2})
        p->mutable_grad().reset();
    at::Tensor x = input;
    for (const auto& b : blocks) {
      auto qkv = at::linear(at::layer_norm(x, {d}, b.g1, b.b1), b.wqkv, b.bqkv)
                     .view({m.batch, m.seq, 3, heads, hd}).permute({2, 0, 3, 1, 4});
      auto att = at::softmax(at::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(double(hd)) + mask, -1);
      auto ctx = at::matmul(att, qkv[2]).transpose(1, 2).reshape({m.batch, m.seq, d});
      x = x + h * at::linear(ctx, b.wo, b.bo);
      x = x + h * at::linear(at::gelu(at::linear(at::layer_norm(x, {d}, b.g2, b.b2), b.w1, b.c1)), b.w2, b.c2);
    }
    at::Tensor loss = 0.5 * (x - target).pow(2).mean();
    loss.backward();
  }
}
BENCHMARK(BM_PlainLibTorchLoop)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
