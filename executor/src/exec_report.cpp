// plait-exec's report: one JSON line (--json) or a few lines of text.
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "plait/executor/exec.hpp"
#include "plait/schedule/memory.hpp"

namespace plait::executor {
namespace {

std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

nlohmann::json host_load_json(const HostLoad& load) {
  return {{"wall_s", load.wall_s}, {"own_cpu_s", load.own_cpu_s}, {"foreign_cpu_s", load.foreign_cpu_s},
          {"steal_s", load.steal_s}, {"cores", load.cores}};
}

}  // namespace

std::string report_json(const ExecReport& r) {
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json out{{"ranks", r.ranks},
                     {"kind", r.kind},
                     {"layers", r.layers},
                     {"device", r.device},
                     {"steps", r.steps},
                     {"time_per_step_s", r.time_per_step_s},
                     {"cpu_time_per_step_s", r.cpu_time_per_step_s},
                     {"serial_time_per_step_s", optional(r.serial_time_per_step_s)},
                     {"serial_cpu_time_per_step_s", optional(r.serial_cpu_time_per_step_s)},
                     {"speedup", optional(r.speedup)},
                     {"max_rel_err_output", optional(r.max_rel_err_output)},
                     {"max_rel_err_grad", optional(r.max_rel_err_grad)},
                     {"loss", r.loss},
                     {"serial_loss", optional(r.serial_loss)},
                     {"forward_iterations", r.run.forward_iterations},
                     {"adjoint_iterations", r.run.adjoint_iterations},
                     {"forward_residual_norms", r.run.forward_residual_norms},
                     {"adjoint_residual_norms", r.run.adjoint_residual_norms},
                     {"peak_memory_bytes", r.peak_memory_bytes},
                     {"graph_misses", r.graph_misses}};
  if (!r.speed_probe_s.empty()) out["speed_probe_s"] = r.speed_probe_s;
  if (r.serial_speed_probe_s) out["serial_speed_probe_s"] = *r.serial_speed_probe_s;
  if (!r.speed_probe_before_s.empty()) {
    out["speed_probe_before_s"] = r.speed_probe_before_s;
    out["speed_probe_after_s"] = r.speed_probe_after_s;
  }
  if (!r.step_times_s.empty()) out["step_times_s"] = r.step_times_s;
  nlohmann::json host;
  if (r.steps_host_load) host["steps"] = host_load_json(*r.steps_host_load);
  if (r.serial_host_load) host["serial"] = host_load_json(*r.serial_host_load);
  if (!host.empty()) out["host_load"] = host;
  return out.dump();
}

std::string report_text(const ExecReport& r) {
  std::ostringstream out;
  out << r.kind << ", " << r.layers << " layers, " << r.ranks << " rank(s), " << r.device << ", "
      << r.steps << " step(s)\n";
  out << "  time per step        " << format_number(r.time_per_step_s) << " s  (cpu "
      << format_number(r.cpu_time_per_step_s) << " s on the busiest rank)\n";
  if (r.serial_time_per_step_s)
    out << "  serial time per step " << format_number(*r.serial_time_per_step_s) << " s  (speedup "
        << format_number(*r.speedup) << ")\n";
  out << "  loss                 " << format_number(r.loss);
  if (r.serial_loss) out << "  (serial " << format_number(*r.serial_loss) << ")";
  out << "\n";
  if (r.max_rel_err_output)
    out << "  rel. error vs serial output " << format_number(*r.max_rel_err_output) << ", gradients (max over blocks) "
        << format_number(*r.max_rel_err_grad) << "\n";
  auto norms = [&](const char* name, const std::vector<double>& values) {
    if (values.empty()) return;
    out << "  " << name << " residual norms";
    for (double v : values) out << ' ' << format_number(v);
    out << "\n";
  };
  if (!r.peak_memory_bytes.empty()) {
    out << "  peak resident memory";
    for (double bytes : r.peak_memory_bytes) out << ' ' << schedule::format_bytes(bytes);
    out << " (per rank)\n";
  }
  norms("forward", r.run.forward_residual_norms);
  norms("adjoint", r.run.adjoint_residual_norms);
  return out.str();
}

}  // namespace plait::executor
