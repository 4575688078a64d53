#include "device_probes.hpp"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "plait/costmodels/measurements.hpp"

namespace plait_bench {
namespace {

void synchronize(const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

std::string torch_version() { return TORCH_VERSION; }

void register_device_probes(const std::string& device_name) {
  const at::Device device(device_name);
  const std::int64_t n = 1024;
  const std::string gemm = std::string(plait::costmodels::gemm_probe) + "/n" + std::to_string(n);
  benchmark::RegisterBenchmark(gemm.c_str(), [device, n](benchmark::State& state) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor a = at::randn({n, n}, options), b = at::randn({n, n}, options);
    at::Tensor c = at::empty({n, n}, options);
    for (auto _ : state) {
      at::mm_out(c, a, b);
      synchronize(device);
    }
    state.counters["flop_rate"] =
        benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  })->UseRealTime()->Unit(benchmark::kMicrosecond);

  const std::int64_t mib = 64, floats = mib * (1 << 20) / 4;
  const std::string stream =
      std::string(plait::costmodels::stream_probe) + "/mib" + std::to_string(mib);
  benchmark::RegisterBenchmark(stream.c_str(), [device, floats](benchmark::State& state) {
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    const at::Tensor source = at::randn({floats}, options);
    at::Tensor target = at::empty({floats}, options);
    target.copy_(source);  // first touch: page faults are not bandwidth
    synchronize(device);
    for (auto _ : state) {
      target.copy_(source);
      synchronize(device);
    }
    // A copy reads and writes every byte.
    state.SetBytesProcessed(state.iterations() * 2 * floats * 4);
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace plait_bench
