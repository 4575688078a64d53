// Cost-model speed: the simulator prices every op of every rank through an
// OpPricer, and plait calibrate fits the message model once per run.
#include <benchmark/benchmark.h>

#include "plait/costmodels/message_fit.hpp"
#include "plait/costmodels/profile.hpp"
#include "plait/schedule/build.hpp"

namespace {

namespace cm = plait::costmodels;
namespace sched = plait::schedule;

sched::Program small_program() {
  sched::BuildSpec spec;
  spec.layers = 64;
  spec.ranks = 4;
  return sched::build_mgrit(spec);
}

// Time to price one op (all ops of rank 0 in turn), analytic roofline.
void BM_AnalyticPricerOpSeconds(benchmark::State& state) {
  const sched::Program program = small_program();
  const auto pricer = cm::make_analytic_pricer(cm::device_sheet("h100-sxm"));
  const auto& ops = program.rank_programs.at(0).sections.at(0).ops;
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pricer->op_seconds(program, ops[i]));
    i = (i + 1) % ops.size();
  }
}
BENCHMARK(BM_AnalyticPricerOpSeconds);

// Piecewise alpha-beta fit of 24 sizes (8 B to 64 MiB), up to 6 segments.
void BM_FitMessageModel(benchmark::State& state) {
  std::vector<cm::MessageSample> samples;
  for (std::int64_t bytes = 8; bytes <= (std::int64_t{64} << 20); bytes *= 2) {
    const double seconds = bytes <= 2048 ? 0.4e-6 + bytes * 2e-10
                           : bytes <= (4 << 20) ? 3e-6 + bytes / 8.5e9 : bytes / 6.7e9;
    samples.push_back({bytes, seconds * (1 + 0.01 * ((bytes / 8) % 3))});
  }
  for (auto _ : state) benchmark::DoNotOptimize(cm::fit_message_model(samples));
}
BENCHMARK(BM_FitMessageModel);

}  // namespace

BENCHMARK_MAIN();
