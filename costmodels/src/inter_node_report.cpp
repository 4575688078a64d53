// The report of an inter-node fit (format_inter_node_fit, markdown).
#include <cmath>
#include <cstdio>

#include "plait/costmodels/inter_node_fit.hpp"

namespace plait::costmodels {
namespace {

std::string format(const char* pattern, double value) {
  char text[96];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string percent(double value) { return format("%.2f %%", 100 * value); }

// A parameter the steps do not tell (flat objective, or at its floor) has no finite error.
std::string uncertainty(double relative, double value) {
  if (!std::isfinite(relative) || relative > 10 || value <= 1.01e-7) return "not told by these steps";
  return format("%.1f %%", 100 * relative);
}

template <typename T>
std::vector<T> subset(const std::vector<T>& all, const std::vector<std::size_t>& rows) {
  std::vector<T> out;
  for (std::size_t row : rows) out.push_back(all[row]);
  return out;
}

}  // namespace

std::string format_inter_node_fit(const std::vector<StepMeasurement>& steps, const std::vector<std::size_t>& rows,
                                  const InterNodeFit& fit, const InterNodeLinks& sheet,
                                  const std::vector<double>& fitted, const std::vector<double>& left_out) {
  const InterNodeLinks& f = fit.links;
  std::string out = "## Inter-node links fitted on " + std::to_string(fit.rows) + " steps across nodes\n\n";
  out += "The kernel model above held fixed; each collective that crosses nodes NCCL's hierarchical all-reduce "
         "(costmodels/cluster_links.hpp), the node's devices sharing its NICs.\n\n";
  out += "| parameter | platform sheet | fitted | ± (1 s.e.) |\n|---|---:|---:|---:|\n";
  out += "| a node's NIC bandwidth | " + format("%.1f GB/s", sheet.node_bytes_per_s / 1e9) + " (" +
         format("%.0f Gb/s", sheet.node_bytes_per_s * 8 / 1e9) + ") | " + format("%.1f GB/s", f.node_bytes_per_s / 1e9) +
         " (" + format("%.0f Gb/s", f.node_bytes_per_s * 8 / 1e9) + ") | " +
         uncertainty(fit.relative_uncertainty[0], f.node_bytes_per_s) + " |\n";
  out += "| inter-node step latency | " + format("%.2f us", sheet.latency_s * 1e6) + " | " +
         format("%.2f us", f.latency_s * 1e6) + " | " + uncertainty(fit.relative_uncertainty[1], f.latency_s) + " |\n";
  out += "| each cross-node collective | " + format("%.2f us", sheet.collective_overhead_s * 1e6) + " | " +
         format("%.2f us", f.collective_overhead_s * 1e6) + " | " +
         uncertainty(fit.relative_uncertainty[2], f.collective_overhead_s) + " |\n\n";
  out += "The fitted bandwidth is " + format("%.0f %%", 100 * f.node_bytes_per_s / sheet.node_bytes_per_s) +
         " of the sheet's. Fit on all rows: mean |error| " + percent(fit.mean_abs_error) + ", max " +
         percent(fit.max_abs_error) + ".\n\n";

  const std::vector<StepMeasurement> chosen = subset(steps, rows);
  const std::vector<ErrorSummary> on_all = summarize_errors(chosen, subset(fitted, rows));
  const std::vector<ErrorSummary> held = summarize_errors(chosen, subset(left_out, rows));
  out += "## Error: fitted on every row, and leave one model out\n\n"
         "Leave one model out: each model's rows predicted by the links fitted on the other models' rows alone.\n\n"
         "| rows | n | fitted: mean abs | max abs | one model out: mean abs | max abs |\n"
         "|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t i = 0; i < on_all.size(); ++i)
    out += "| " + on_all[i].group + " | " + std::to_string(on_all[i].rows) + " | " + percent(on_all[i].mean_abs) +
           " | " + format("%.1f %%", 100 * on_all[i].max_abs) + " | " + percent(held[i].mean_abs) + " | " +
           format("%.1f %%", 100 * held[i].max_abs) + " |\n";
  out += "\n## Every row across nodes\n\n"
         "| line | GPUs | TP | PP | DP | micro | model | measured ms | fitted ms | error | one model out ms | error |\n"
         "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t row : rows) {
    const StepMeasurement& s = steps[row];
    out += "| " + std::to_string(s.line) + " | " + std::to_string(s.gpus) + " | " + std::to_string(s.tp) + " | " +
           std::to_string(s.pp) + " | " + std::to_string(s.dp) + " | " + std::to_string(s.micro_batch) + " | " +
           model_of(s) + " | " + format("%.1f", s.seconds * 1e3) + " | " + format("%.1f", fitted[row] * 1e3) + " | " +
           format("%+.1f %%", 100 * (fitted[row] / s.seconds - 1)) + " | " + format("%.1f", left_out[row] * 1e3) +
           " | " + format("%+.1f %%", 100 * (left_out[row] / s.seconds - 1)) + " |\n";
  }
  return out;
}

}  // namespace plait::costmodels
