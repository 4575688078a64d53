// The GPU kernel model fitted to a trace's kernels (see trace_fit.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "detail/nelder_mead.hpp"
#include "plait/costmodels/analytic.hpp"
#include "plait/costmodels/trace_fit.hpp"
#include "plait/schedule/error.hpp"
#include "plait/traces/trace.hpp"

namespace plait::costmodels {
namespace {

constexpr double min_kernel_s = 20e-6;

struct Sample {
  WorkPart part;
  std::string dtype;
  double seconds = 0;
};

double kernel_seconds(const Sample& s, const DeviceSheet& device) {
  return roofline_seconds(s.part, device, s.dtype) / device.efficiency;
}

double median_error(const std::vector<Sample>& samples, const DeviceSheet& device) {
  if (samples.empty()) return 0;
  std::vector<double> errors;
  for (const Sample& s : samples) errors.push_back(std::abs(kernel_seconds(s, device) / s.seconds - 1));
  std::nth_element(errors.begin(), errors.begin() + errors.size() / 2, errors.end());
  return errors[errors.size() / 2];
}

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

}  // namespace

TraceKernelFit fit_trace_kernels(const traces::Trace& trace, const DeviceSheet& sheet) {
  std::vector<Sample> gemms, memory;
  std::map<std::pair<int, std::string>, std::vector<double>> launch_starts;  // per rank and thread
  for (const traces::Event& e : trace.events) {
    if (e.kind == "host" && e.cost_key.find("Launch") != std::string::npos) launch_starts[{e.rank, e.track}].push_back(e.start);
    // Short kernels are bound by the device's own launch latency, which the roofline does not model.
    if (e.kind != "compute" || !e.work || e.end - e.start < min_kernel_s) continue;
    Sample s{{e.work->op, e.work->flops, e.work->bytes, static_cast<double>(e.work->gemm_min_dim)}, e.work->dtype,
             e.end - e.start};
    (e.work->gemm_min_dim > 0 ? gemms : memory).push_back(std::move(s));
  }
  if (gemms.empty() && memory.empty()) {
    throw Error("calibrate --from-trace",
                "no kernel carries its work: record with torch.profiler.profile(record_shapes=True) and a GPU");
  }
  TraceKernelFit fit;
  fit.gemm_kernels = static_cast<int>(gemms.size());
  fit.memory_kernels = static_cast<int>(memory.size());
  fit.sheet_gemm_median_error = median_error(gemms, sheet);
  fit.sheet_memory_median_error = median_error(memory, sheet);

  // log efficiency, log GEMM half dimension, log memory efficiency
  const auto device_at = [&](const std::array<double, 3>& x) {
    DeviceSheet device = sheet;
    device.efficiency = std::exp(x[0]);
    device.gemm_half_dim = gemms.empty() ? sheet.gemm_half_dim : std::exp(x[1]);
    device.memory_efficiency = memory.empty() ? sheet.memory_efficiency : std::min(1.0, std::exp(x[2]));
    return device;
  };
  const auto objective = [&](const std::array<double, 3>& x) {
    const DeviceSheet device = device_at(x);
    double cost = 0;
    for (const auto* samples : {&gemms, &memory}) {
      for (const Sample& s : *samples) cost += std::abs(std::log(kernel_seconds(s, device) / s.seconds));
    }
    return cost;
  };
  std::array<double, 3> best = {std::log(0.5), std::log(64.0), std::log(0.8)};
  best = detail::nelder_mead<3>(objective, best);
  best = detail::nelder_mead<3>(objective, best);  // a restart leaves a collapsed simplex
  fit.device = device_at(best);

  std::vector<double> gaps;
  for (auto& [thread, starts] : launch_starts) {
    std::sort(starts.begin(), starts.end());
    for (std::size_t i = 1; i < starts.size(); ++i) {
      if (starts[i] - starts[i - 1] < 1e-3) gaps.push_back(starts[i] - starts[i - 1]);
    }
  }
  fit.launches = static_cast<int>(gaps.size());
  if (!gaps.empty()) fit.device.kernel_overhead_s = median(gaps);
  fit.gemm_median_error = median_error(gemms, fit.device);
  fit.memory_median_error = median_error(memory, fit.device);
  return fit;
}

std::string format_trace_fit(const TraceKernelFit& fit, const DeviceSheet& sheet, const std::string& origin) {
  char text[2048];
  std::snprintf(text, sizeof text,
                "# Kernel model fitted to %s\n\n"
                "| parameter | sheet %s | fitted | from |\n| --- | ---: | ---: | --- |\n"
                "| efficiency | %.3g | %.3g | %d GEMM + %d memory-bound kernels |\n"
                "| GEMM half dimension | %.3g | %.3g | %d GEMM kernels |\n"
                "| memory efficiency | %.3g | %.3g | %d memory-bound kernels |\n"
                "| kernel launch (us) | %.3g | %.3g | median of %d launch-to-launch gaps |\n\n"
                "| kernels | count | median \\|error\\| with the sheet | fitted |\n| --- | ---: | ---: | ---: |\n"
                "| GEMM | %d | %.1f %% | %.1f %% |\n| memory-bound | %d | %.1f %% | %.1f %% |\n",
                origin.c_str(), sheet.name.c_str(), sheet.efficiency, fit.device.efficiency, fit.gemm_kernels,
                fit.memory_kernels, sheet.gemm_half_dim, fit.device.gemm_half_dim, fit.gemm_kernels,
                sheet.memory_efficiency, fit.device.memory_efficiency, fit.memory_kernels, sheet.kernel_overhead_s * 1e6,
                fit.device.kernel_overhead_s * 1e6, fit.launches, fit.gemm_kernels, fit.sheet_gemm_median_error * 100,
                fit.gemm_median_error * 100, fit.memory_kernels, fit.sheet_memory_median_error * 100,
                fit.memory_median_error * 100);
  return text;
}

}  // namespace plait::costmodels
