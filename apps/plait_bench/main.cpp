// plait-bench: Google Benchmark of the executor's own compute ops, one
// benchmark per cost key and shape, named "<cost key>/<shape>" (see
// plait/costmodels/measurements.hpp); plait calibrate reads its JSON output.
//
//   plait-bench [--shapes=d256.h4.s128.b8.r4.fp32.causal,...] [--program=p.json]
//               [--keys=block.fwd,...] [--device=cpu|cuda] [--threads=1] [--probes]
//               [--recompute]   (adjoint steps recompute the forward: no kept graphs)
//               [Google Benchmark flags: --benchmark_out=f.json --benchmark_repetitions=3 ...]
//
// Ops are the ones a 1-rank MGRIT Program of the shape contains, run through
// executor::TorchBackend::compute exactly as plait-exec runs them.
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "device_probes.hpp"
#include "plait/costmodels/measurements.hpp"
#include "plait/executor/torch_backend.hpp"
#include "plait/schedule/build.hpp"
#include "plait/schedule/error.hpp"

namespace {

namespace cm = plait::costmodels;
namespace sched = plait::schedule;
using plait::executor::TorchBackend;

struct BenchArgs {
  std::vector<sched::ModelDesc> shapes;
  std::vector<std::string> keys;
  std::string device = "cpu";
  int threads = 1;
  bool probes = false;
  bool recompute = false;  // adjoint steps recompute the forward (no kept graphs)
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// Takes plait-bench's own flags out of argv, leaving Google Benchmark's.
BenchArgs take_own_flags(int& argc, char** argv) {
  BenchArgs args;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value_of = [&](const std::string& flag) -> std::optional<std::string> {
      if (arg.rfind(flag + "=", 0) == 0) return arg.substr(flag.size() + 1);
      if (arg == flag) {
        if (i + 1 >= argc) throw plait::Error(flag, "needs a value");
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    if (auto value = value_of("--shapes")) {
      for (const auto& name : split(*value)) args.shapes.push_back(cm::parse_shape_name(name));
    } else if (auto value = value_of("--program")) {
      args.shapes.push_back(sched::load_program(*value).model);
    } else if (auto value = value_of("--keys")) {
      args.keys = split(*value);
    } else if (auto value = value_of("--device")) {
      args.device = *value;
    } else if (auto value = value_of("--threads")) {
      args.threads = std::stoi(*value);
    } else if (arg == "--probes") {
      args.probes = true;
    } else if (arg == "--recompute") {
      args.recompute = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (args.shapes.empty()) args.shapes.push_back(sched::ModelDesc{});
  if (args.keys.empty()) {
    for (std::string_view key : cm::benchmarked_keys()) args.keys.emplace_back(key);
  }
  if (args.threads < 1) throw plait::Error("--threads", "must be at least 1");
  return args;
}

// A 1-rank MGRIT Program of the shape: it has every compute cost key.
sched::Program bench_program(const sched::ModelDesc& shape) {
  sched::BuildSpec spec;
  spec.layers = 4;
  spec.ranks = 1;
  spec.forward = {.levels = 2, .coarsening_factor = 2, .relax = sched::Relax::F, .iterations = 1};
  spec.adjoint = spec.forward;
  spec.adjoint.iterations = 2;  // a fine adjoint relaxation: block.adj on kept graphs
  spec.model = shape;
  return sched::build_mgrit(spec);
}

// The first op of each compute cost key in the Program; keys the Program lacks
// (residual ops appear only with more iterations) get an op like the builders'.
std::map<std::string, sched::Op, std::less<>> ops_by_key(const sched::Program& program) {
  std::map<std::string, sched::Op, std::less<>> ops;
  const auto state = [](sched::Space space, int point) { return sched::Buffer{space, 0, point}; };
  sched::Op sub;
  sub.kind = sched::OpKind::sub;
  sub.dst = state(sched::Space::tmp, 0);
  sub.a = state(sched::Space::u, 2);
  sub.b = state(sched::Space::g, 2);
  sched::Op norm;
  norm.kind = sched::OpKind::norm_sq;
  norm.dst = state(sched::Space::reg, 0);
  norm.a = state(sched::Space::tmp, 0);
  for (const auto& section : program.rank_programs.at(0).sections) {
    for (const sched::Op& op : section.ops) {
      if (!sched::is_communication(op.kind) && op.kind != sched::OpKind::record_norm) {
        ops.emplace(std::string(sched::cost_key(op)), op);
      }
    }
  }
  ops.emplace(std::string(sched::cost_key(sub)), sub);  // no-ops where the Program had one
  ops.emplace(std::string(sched::cost_key(norm)), norm);
  return ops;
}

// One shape's backend and ops, made on first use (listing benchmarks stays cheap).
class ShapeBench {
 public:
  ShapeBench(sched::ModelDesc shape, std::string device, bool recompute)
      : shape_(std::move(shape)), device_(std::move(device)), recompute_(recompute) {}

  TorchBackend& backend() {
    if (!backend_) {
      program_ = bench_program(shape_);
      ops_ = ops_by_key(program_);
      backend_ = std::make_unique<TorchBackend>(program_, 0, device_);
      backend_->set_keep_step_graphs(!recompute_);
    }
    return *backend_;
  }

  // The op for `key` with every state it reads filled with random values; an
  // adjoint's state c is first stepped forward keeping its graph, as in a run,
  // so that block.adj/adj_grad use it and the *_recompute keys redo it.
  const sched::Op& prepared_op(std::string_view key) {
    TorchBackend& torch = backend();
    const auto found = ops_.find(key);
    if (found == ops_.end()) {
      throw plait::Error(std::string(key), "no such op in a 1-rank MGRIT Program");
    }
    std::uint64_t seed = 1;
    for (const sched::Buffer* input : {&found->second.a, &found->second.b, &found->second.c}) {
      if (!input->empty() && input->space != sched::Space::reg && !torch.has_state(*input)) {
        torch.fill_random(*input, seed++);
      }
    }
    const sched::Op& op = found->second;
    if (op.kind == sched::OpKind::step_adjoint) {
      sched::Op forward;
      forward.kind = sched::OpKind::step;
      forward.dst = sched::Buffer{sched::Space::tmp, 0, 1};
      forward.a = op.c;
      forward.level = op.level;
      forward.block = op.block;
      forward.span = op.span;
      forward.graph = sched::GraphUse::keep;  // used unless op recomputes
      torch.compute(forward);
    }
    return op;
  }

 private:
  sched::ModelDesc shape_;
  std::string device_;
  bool recompute_;
  sched::Program program_;
  std::map<std::string, sched::Op, std::less<>> ops_;
  std::unique_ptr<TorchBackend> backend_;
};

void run_op(benchmark::State& state, ShapeBench& bench, const std::string& key) {
  try {
    TorchBackend& torch = bench.backend();
    const sched::Op op = bench.prepared_op(key);
    torch.compute(op);  // warm-up: allocator, lazily created parameters
    torch.synchronize();
    for (auto _ : state) {
      torch.compute(op);
      torch.synchronize();
    }
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  BenchArgs args;
  try {
    args = take_own_flags(argc, argv);
    for (const auto& shape : args.shapes) plait::executor::check_runnable(shape, args.device);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "plait-bench: %s\n", error.what());
    return 1;
  }
  plait::executor::set_up_compute(args.threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::AddCustomContext("torch_version", plait_bench::torch_version());
  benchmark::AddCustomContext("plait_device", args.device);
  benchmark::AddCustomContext("plait_threads", std::to_string(args.threads));

  std::vector<std::unique_ptr<ShapeBench>> benches;
  for (const auto& shape : args.shapes) {
    benches.push_back(std::make_unique<ShapeBench>(shape, args.device, args.recompute));
    ShapeBench* bench = benches.back().get();
    for (const std::string& key : args.keys) {
      benchmark::RegisterBenchmark(cm::benchmark_name(key, shape).c_str(),
                                   [bench, key](benchmark::State& state) { run_op(state, *bench, key); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  if (args.probes) plait_bench::register_device_probes(args.device);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
