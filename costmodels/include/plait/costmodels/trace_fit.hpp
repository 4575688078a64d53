// The GPU kernel model fitted to the kernels of a recorded trace (plait
// import of a PyTorch profiler trace with shapes): `plait calibrate --from-trace`.
#pragma once

#include <string>

#include "plait/costmodels/costmodels.hpp"

namespace plait::traces {
struct Trace;
}

namespace plait::costmodels {

struct TraceKernelFit {
  // The sheet with efficiency, gemm_half_dim, memory_efficiency and
  // kernel_overhead_s fitted (what calibrate --from-steps fits from steps).
  DeviceSheet device;
  int gemm_kernels = 0, memory_kernels = 0;  // kernels with their work, fitted on
  int launches = 0;                          // launch-to-launch gaps the overhead is the median of
  // Median |predicted / measured - 1| of the fitted model on each class.
  double gemm_median_error = 0, memory_median_error = 0;
  double sheet_gemm_median_error = 0, sheet_memory_median_error = 0;  // the sheet before the fit
};

// Least absolute deviations of log(predicted / measured) (robust to the kernels
// a roofline cannot describe, e.g. latency-bound small copies; the fit follows
// the median kernel) over the kernels of 20 us or more
// (shorter ones are bound by the device's launch latency, which the roofline
// does not model) that carry their work (GEMMs by their dimensions,
// elementwise kernels by their bytes), each
// priced as the analytic model prices a kernel (roofline / efficiency, GEMM
// saturation, memory efficiency); a class the trace lacks keeps the sheet's
// value. The launch overhead: the median gap between one kernel launch and the
// next on a host thread, among gaps under 1 ms (a burst of launches).
// Throws plait::Error when no kernel carries its work (record with shapes).
TraceKernelFit fit_trace_kernels(const traces::Trace& trace, const DeviceSheet& sheet);

// A short table of the fit (markdown).
std::string format_trace_fit(const TraceKernelFit& fit, const DeviceSheet& sheet, const std::string& origin);

}  // namespace plait::costmodels
