// How fast Programs are built, serialised and validated at scale
// (N = 16384 layers, 4 levels, cf 2, 1024 ranks: the target is well under 1 s).
#include <benchmark/benchmark.h>

#include "plait/schedule/build.hpp"
#include "plait/schedule/summary.hpp"
#include "plait/schedule/validate.hpp"

namespace {

using namespace plait::schedule;

BuildSpec large_spec(int ranks) {
  BuildSpec spec;
  spec.layers = 16384;
  spec.ranks = ranks;
  spec.forward = {.levels = 4, .coarsening_factor = 2, .relax = Relax::FCF, .iterations = 2};
  spec.adjoint = {.levels = 4, .coarsening_factor = 2, .relax = Relax::F, .iterations = 1};
  return spec;
}

std::int64_t op_count(const Program& program) {
  std::int64_t ops = 0;
  for (const auto& rank : program.rank_programs) {
    for (const auto& section : rank.sections) ops += static_cast<std::int64_t>(section.ops.size());
  }
  return ops;
}

void BM_BuildMgrit(benchmark::State& state) {
  const auto spec = large_spec(static_cast<int>(state.range(0)));
  std::int64_t ops = 0;
  for (auto _ : state) {
    const auto program = build_mgrit(spec);
    ops = op_count(program);
    benchmark::DoNotOptimize(ops);
  }
  state.counters["ops"] = static_cast<double>(ops);
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_BuildMgrit)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond);

void BM_BuildAndSerialise(benchmark::State& state) {
  const auto spec = large_spec(1024);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto text = dump_program(build_mgrit(spec));
    bytes = text.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["json_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_BuildAndSerialise)->Unit(benchmark::kMillisecond);

void BM_ParseAndValidate(benchmark::State& state) {
  const auto text = dump_program(build_mgrit(large_spec(1024)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(parse_program(text));
  }
}
BENCHMARK(BM_ParseAndValidate)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
