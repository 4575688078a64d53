// Held-out checking of a fitted profile, default shapes, machine description.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "detail/child_process.hpp"
#include "plait/costmodels/calibration.hpp"
#include "plait/schedule/error.hpp"

namespace plait::costmodels {

std::vector<schedule::ModelDesc> default_calibration_shapes() {
  // Widths, sequence lengths and batches around the default model (d256.h4.s128.b8),
  // with head widths 32 and 64, so the fit sees GEMM- and attention-heavy shapes.
  std::vector<schedule::ModelDesc> shapes;
  for (const char* name : {"d256.h4.s128.b8.r4.fp32.causal", "d128.h2.s128.b8.r4.fp32.causal",
                           "d384.h6.s64.b4.r4.fp32.causal", "d256.h8.s256.b2.r4.fp32.causal",
                           "d128.h4.s64.b4.r4.fp32.causal", "d384.h12.s128.b4.r4.fp32.causal",
                           "d256.h4.s32.b8.r4.fp32.causal"}) {
    shapes.push_back(parse_shape_name(name));
  }
  return shapes;
}

std::vector<schedule::ModelDesc> default_check_shapes() {
  std::vector<schedule::ModelDesc> shapes;
  for (const char* name : {"d192.h3.s96.b4.r4.fp32.causal", "d320.h5.s128.b4.r4.fp32.causal",
                           "d256.h4.s192.b2.r4.fp32.causal", "d128.h2.s256.b4.r4.fp32.causal"}) {
    shapes.push_back(parse_shape_name(name));
  }
  return shapes;
}

CheckReport check_profile_model(const Profile& profile,
                                const std::vector<OpMeasurement>& held_out) {
  CheckReport report;
  std::vector<double> errors;
  for (const OpMeasurement& op : held_out) {
    const auto work = transformer_work(op.shape);
    const auto found = work.find(op.key);
    const auto fit = profile.fits.find(op.key);
    if (found == work.end() || !(op.alone.median_s > 0)) continue;
    const double roofline = roofline_seconds(found->second, profile.device, op.shape.dtype);
    const double predicted = fit != profile.fits.end() ? fit->second.seconds(roofline)
                                                       : roofline / profile.device.efficiency;
    const double error = std::abs(predicted - op.alone.median_s) / op.alone.median_s;
    report.rows.push_back({op.key, op.shape, op.alone.median_s, predicted, error});
    errors.push_back(error);
  }
  if (errors.empty()) throw Error("calibration check", "no held-out measurements to check");
  std::sort(errors.begin(), errors.end());
  const std::size_t n = errors.size();
  report.median_relative_error = n % 2 ? errors[n / 2] : 0.5 * (errors[n / 2 - 1] + errors[n / 2]);
  report.max_relative_error = errors.back();
  return report;
}

BenchClock calibration_clock(const std::string& device, int threads) {
  return device == "cpu" && threads == 1 ? BenchClock::cpu : BenchClock::wall;
}

std::string sibling_executable(const std::string& name) {
  const auto path = std::filesystem::path(detail::executable_directory()) / name;
  return std::filesystem::exists(path) ? path.string() : name;
}

MachineInfo describe_machine(const std::string& device, int threads,
                             const std::string& torch_version) {
  MachineInfo machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && machine.cpu_model.empty()) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) machine.cpu_model = line.substr(colon + 2);
    }
  }
  if (machine.cpu_model.empty()) machine.cpu_model = "unknown";
  machine.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  machine.threads = threads;
  machine.torch_version = torch_version.empty() ? "unknown" : torch_version;
  machine.device = device;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  machine.date = date;
  machine.clock = std::string(to_string(calibration_clock(device, threads)));
  return machine;
}

}  // namespace plait::costmodels
