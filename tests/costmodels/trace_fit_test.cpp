// The kernel model fitted to a trace's kernels: known parameters recovered
// from kernels the model itself timed; and a real A100 trace.
#include <gtest/gtest.h>

#include <cmath>

#include "plait/costmodels/analytic.hpp"
#include "plait/costmodels/trace_fit.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/import.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels {
namespace {

traces::Event kernel(double start, double seconds, const traces::KernelWork& work) {
  traces::Event e;
  e.kind = "compute";
  e.track = "gpu 0 stream 7";
  e.cost_key = work.op;
  e.start = start;
  e.end = start + seconds;
  e.work = work;
  return e;
}

TEST(TraceFit, RecoversTheParametersOfKernelsTheModelTimed) {
  DeviceSheet truth = device_sheet("a100-80gb");
  truth.efficiency = 0.6;
  truth.gemm_half_dim = 96;
  truth.memory_efficiency = 0.8;
  traces::Trace trace;
  double t = 0;
  int long_gemms = 0, long_elementwise = 0;  // 20 us or more: the ones fitted
  for (double m : {32.0, 48.0, 64.0, 96.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0}) {  // GEMMs, some short of saturation
    const traces::KernelWork gemm{"aten::mm", 2 * m * m * 65536, (2 * m * 65536 + m * m) * 2, static_cast<std::int64_t>(m), "bf16"};
    const WorkPart part{"gemm", gemm.flops, gemm.bytes, m};
    const double seconds = roofline_seconds(part, truth, "bf16") / truth.efficiency;
    trace.events.push_back(kernel(t, seconds, gemm));
    t += seconds;
    long_gemms += seconds >= 20e-6;
  }
  for (double megabytes : {8.0, 32.0, 128.0, 512.0}) {  // elementwise
    const traces::KernelWork add{"aten::add", megabytes * 1e6 / 6, megabytes * 1e6, 0, "bf16"};
    const double seconds = roofline_seconds(WorkPart{"add", add.flops, add.bytes, 0}, truth, "bf16") / truth.efficiency;
    trace.events.push_back(kernel(t, seconds, add));
    t += seconds;
    long_elementwise += seconds >= 20e-6;
  }
  for (int i = 0; i < 9; ++i) {  // launches 6 us apart, one after a long pause
    traces::Event launch;
    launch.kind = "host";
    launch.track = "thread 1";
    launch.cost_key = "cudaLaunchKernel";
    launch.start = i < 8 ? 6e-6 * i : 1.0;
    launch.end = launch.start + 2e-6;
    trace.events.push_back(launch);
  }
  const TraceKernelFit fit = fit_trace_kernels(trace, device_sheet("a100-80gb"));
  EXPECT_NEAR(fit.device.efficiency, 0.6, 0.006);
  EXPECT_NEAR(fit.device.gemm_half_dim, 96, 1);
  EXPECT_NEAR(fit.device.memory_efficiency, 0.8, 0.008);
  EXPECT_NEAR(fit.device.kernel_overhead_s, 6e-6, 1e-12);  // the pause is not a launch gap
  EXPECT_EQ(fit.gemm_kernels, long_gemms);
  EXPECT_GE(long_gemms, 7);
  EXPECT_EQ(fit.memory_kernels, long_elementwise);
  EXPECT_GE(long_elementwise, 3);
  EXPECT_LT(fit.gemm_median_error, 1e-3);
}

TEST(TraceFit, ATraceWithoutShapesIsRefused) {
  traces::Trace trace;
  trace.events.push_back(kernel(0, 1e-3, {"aten::mm", 1, 1, 1, "fp32"}));
  trace.events.back().work.reset();
  try {
    fit_trace_kernels(trace, device_sheet("a100-80gb"));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "calibrate --from-trace: no kernel carries its work: record with "
                               "torch.profiler.profile(record_shapes=True) and a GPU");
  }
}

// HTA's sampled A100 trace (recorded with shapes): the fit improves on the
// sheet's peak figures for the GEMMs it fits (TF32 tensor-core kernels, faster
// than the FP32 peak: an efficiency above 1).
TEST(TraceFit, SampledA100TraceFitsBetterThanTheSheet) {
  const std::string dir = std::string(PLAIT_TRACE_DATA) + "/hta/";
  const traces::Trace trace = traces::import_kineto({dir + "sampled_rank-0.json.gz", dir + "sampled_rank-1.json.gz"});
  const TraceKernelFit fit = fit_trace_kernels(trace, device_sheet("a100-80gb"));
  EXPECT_GT(fit.gemm_kernels, 500);
  EXPECT_GT(fit.memory_kernels, 50);
  EXPECT_LT(fit.gemm_median_error, fit.sheet_gemm_median_error / 1.5);
  EXPECT_LT(fit.memory_median_error, fit.sheet_memory_median_error);
  EXPECT_GT(fit.device.efficiency, 1);
  EXPECT_GT(fit.device.kernel_overhead_s, 1e-6);
  EXPECT_LT(fit.device.kernel_overhead_s, 1e-3);
}

}  // namespace
}  // namespace plait::costmodels
