// The reports of the fits on measured steps (markdown): the kernel model's
// error tables, and the inter-node links' (format_inter_node_fit).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <tuple>

#include "plait/costmodels/inter_node_fit.hpp"
#include "plait/costmodels/steps.hpp"

namespace plait::costmodels {
namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string percent(double value) { return format("%.2f %%", 100 * value); }

// A parameter the steps do not tell (flat objective, or at its floor) has no finite error.
std::string uncertainty(double relative, double value) {
  if (!std::isfinite(relative) || relative > 10 || value <= 1.01e-7) return "not told by these steps";
  return format("%.1f %%", 100 * relative);
}

}  // namespace

std::vector<ErrorSummary> summarize_errors(const std::vector<StepMeasurement>& steps, const std::vector<double>& predicted) {
  std::map<std::pair<int, int>, ErrorSummary> groups;  // (axis, value): ordered by axis, then value
  const char* axes[] = {"all", "TP", "PP", "DP", "micro batch", "GPUs"};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const StepMeasurement& s = steps[i];
    const double error = std::abs(predicted[i] / s.seconds - 1);
    const int values[] = {0, s.tp, s.pp, s.dp, s.micro_batch, s.gpus};
    for (int axis = 0; axis < 6; ++axis) {
      ErrorSummary& group = groups[{axis, values[axis]}];
      group.group = axis == 0 ? "all" : std::string(axes[axis]) + " " + std::to_string(values[axis]);
      group.mean_abs += error;
      group.max_abs = std::max(group.max_abs, error);
      ++group.rows;
    }
  }
  std::vector<ErrorSummary> out;
  for (auto& [key, group] : groups) {
    group.mean_abs /= group.rows;
    out.push_back(group);
  }
  return out;
}

namespace {

std::string error_table(const std::vector<StepMeasurement>& steps, const std::vector<double>& predicted) {
  std::string out = "| rows | n | mean abs | max abs |\n|---|---:|---:|---:|\n";
  for (const ErrorSummary& group : summarize_errors(steps, predicted))
    out += "| " + group.group + " | " + std::to_string(group.rows) + " | " + format("%.2f %%", 100 * group.mean_abs) +
           " | " + format("%.1f %%", 100 * group.max_abs) + " |\n";
  return out;
}

std::string shape_factor_table(const std::vector<ShapeFactors>& factors) {
  std::string out = "| TP | micro | d_model | heads | seq | block | ends | rows |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const ShapeFactors& f : factors)
    out += "| " + std::to_string(f.shape.tensor_parallel) + " | " + std::to_string(f.shape.batch) + " | " +
           std::to_string(f.shape.d_model) + " | " + std::to_string(f.shape.heads) + " | " + std::to_string(f.shape.seq) +
           " | " + format("%.3f", f.block) + " | " + format("%.3f", f.ends) + " | " + std::to_string(f.rows) + " |\n";
  return out;
}

}  // namespace

std::string format_step_fit(const std::vector<StepMeasurement>& steps, const HeldOut& both, const KernelFit& fit,
                            int folds, const std::string& origin) {
  const std::vector<double>& held_out = both.rows;
  const DeviceSheet& d = fit.device;
  const auto& u = fit.relative_uncertainty;
  std::string out = "# Kernel model fitted on " + std::to_string(steps.size()) + " measured steps\n\n";
  out += "Steps: `" + origin + "`. Device sheet `" + d.name + "` (peak " + format("%.3g", d.peak_flops_bf16) +
         " FLOP/s fp16, " + format("%.3g", d.memory_bandwidth) + " B/s).\n\n";
  out += "## The smooth model (every shape)\n\n| parameter | fitted | ± (1 s.e.) |\n|---|---:|---:|\n";
  out += "| efficiency (of peak) | " + format("%.3f", d.efficiency) + " | " + format("%.1f %%", 100 * u[0]) + " |\n";
  out += "| GEMM half-speed dimension | " + format("%.1f", d.gemm_half_dim) + " | " + format("%.1f %%", 100 * u[1]) + " |\n";
  out += "| memory efficiency (of the above) | " + format("%.3f", d.memory_efficiency) + " | " +
         format("%.1f %%", 100 * u[2]) + " |\n";
  out += "| kernel launch | " + format("%.2f us", d.kernel_overhead_s * 1e6) + " | " + format("%.1f %%", 100 * u[3]) + " |\n";
  out += "| message overhead (stage to stage) | " + format("%.1f us", d.message_overhead_s * 1e6) + " | " +
         format("%.1f %%", 100 * u[4]) + " |\n\n";
  out += "## Shape factors (the shapes among the steps)\n\nFitted after the smooth model, on each micro-batch "
         "shape's rows: its block steps cost `block` times, its embedding and head `ends` times the smooth "
         "model's price.\n\n" + shape_factor_table(fit.shape_factors) + "\n";
  out += "Fit on all rows: mean |error| " + format("%.2f %%", 100 * fit.mean_abs_error) + " (the smooth model alone " +
         format("%.2f %%", 100 * fit.smooth_mean_abs_error) + ").\n\n";
  out += "## " + std::to_string(folds) + "-fold held-out error\n\n";
  out += "Each row predicted by the model fitted on the other folds (its shape's factors from its shape's other "
         "rows).\n\n" + error_table(steps, held_out);
  out += "\n## Shapes not seen: " + std::to_string(folds) + "-fold by shape\n\nThe micro-batch shapes dealt into " +
         std::to_string(folds) + " folds, each with all its rows: a row is predicted by the smooth model fitted "
         "without any row of its shape, as a shape not among the steps is.\n\n" + error_table(steps, both.shapes);
  // A miss shared by every row of one per-rank shape is the model's (that
  // shape's kernels), not the measurement's noise: the spread says which.
  struct Shape {
    double sum = 0, sum_sq = 0;
    int rows = 0;
  };
  std::map<std::tuple<int, int, int>, Shape> shapes;  // (TP, micro batch, hidden)
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Shape& shape = shapes[{steps[i].tp, steps[i].micro_batch, steps[i].hidden}];
    const double error = held_out[i] / steps[i].seconds - 1;
    shape.sum += error, shape.sum_sq += error * error, ++shape.rows;
  }
  std::vector<std::pair<double, std::string>> by_shape;
  for (const auto& [key, shape] : shapes) {
    const double mean = shape.sum / shape.rows;
    const double spread = std::sqrt(std::max(0.0, shape.sum_sq / shape.rows - mean * mean));
    const auto [tp, micro, hidden] = key;
    by_shape.emplace_back(std::abs(mean), "| " + std::to_string(tp) + " | " + std::to_string(micro) + " | " +
                                              std::to_string(hidden) + " | " + std::to_string(shape.rows) + " | " +
                                              format("%+.1f %%", 100 * mean) + " | " + format("%.1f %%", 100 * spread) + " |\n");
  }
  std::sort(by_shape.rbegin(), by_shape.rend());
  out += "\n## Misses by per-rank shape\n\nMean signed held-out error of the rows of one shape and its spread "
         "(a large mean with a small spread is the model's miss on that shape's kernels); the largest first.\n\n"
         "| TP | micro | hidden | rows | mean | spread |\n|---:|---:|---:|---:|---:|---:|\n";
  for (std::size_t k = 0; k < std::min<std::size_t>(8, by_shape.size()); ++k) out += by_shape[k].second;
  std::vector<std::size_t> order(steps.size());
  std::iota(order.begin(), order.end(), 0);
  const auto error = [&](std::size_t i) { return held_out[i] / steps[i].seconds - 1; };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return std::abs(error(a)) > std::abs(error(b)); });
  out += "\n## Worst held-out rows\n\n| line | GPUs | TP | PP | DP | global | micro | hidden | layers | measured | predicted | error |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (std::size_t k = 0; k < std::min<std::size_t>(10, order.size()); ++k) {
    const StepMeasurement& s = steps[order[k]];
    out += "| " + std::to_string(s.line) + " | " + std::to_string(s.gpus) + " | " + std::to_string(s.tp) + " | " +
           std::to_string(s.pp) + " | " + std::to_string(s.dp) + " | " + std::to_string(s.global_batch) + " | " +
           std::to_string(s.micro_batch) + " | " + std::to_string(s.hidden) + " | " + std::to_string(s.layers) + " | " +
           format("%.1f ms", s.seconds * 1e3) + " | " + format("%.1f ms", held_out[order[k]] * 1e3) + " | " +
           format("%+.1f %%", 100 * error(order[k])) + " |\n";
  }
  return out;
}

std::string format_inter_node_fit(const std::vector<StepMeasurement>& steps, const InterNodeFit& fit,
                                  const InterNodeLinks& sheet, const std::vector<double>& fitted,
                                  const std::vector<double>& left_out) {
  const InterNodeLinks& f = fit.links;
  std::string out = "## Inter-node links fitted on " + std::to_string(fit.rows) + " steps across nodes\n\n";
  out += "The kernel model above held fixed; each collective that crosses nodes is NCCL's hierarchical all-reduce "
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

  // Without a second model there is no leave-one-model-out check: its cells stay empty.
  const bool one_model_out = !left_out.empty();
  const std::vector<ErrorSummary> on_all = summarize_errors(steps, fitted);
  const std::vector<ErrorSummary> held = one_model_out ? summarize_errors(steps, left_out) : on_all;
  out += "## Error: fitted on every row, and leave one model out\n\n";
  out += one_model_out ? "Leave one model out: each model's rows predicted by the links fitted on the other models' rows alone.\n\n"
                       : "One model among these rows: no leave-one-model-out check (it needs two).\n\n";
  out += "| rows | n | fitted: mean abs | max abs | one model out: mean abs | max abs |\n|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t i = 0; i < on_all.size(); ++i)
    out += "| " + on_all[i].group + " | " + std::to_string(on_all[i].rows) + " | " + percent(on_all[i].mean_abs) +
           " | " + format("%.1f %%", 100 * on_all[i].max_abs) + " | " +
           (one_model_out ? percent(held[i].mean_abs) + " | " + format("%.1f %%", 100 * held[i].max_abs) : " | ") +
           " |\n";
  out += "\n## Every row across nodes\n\n"
         "| line | GPUs | TP | PP | DP | micro | model | measured ms | fitted ms | error | one model out ms | error |\n"
         "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t row = 0; row < steps.size(); ++row) {
    const StepMeasurement& s = steps[row];
    out += "| " + std::to_string(s.line) + " | " + std::to_string(s.gpus) + " | " + std::to_string(s.tp) + " | " +
           std::to_string(s.pp) + " | " + std::to_string(s.dp) + " | " + std::to_string(s.micro_batch) + " | " +
           model_of(s) + " | " + format("%.1f", s.seconds * 1e3) + " | " + format("%.1f", fitted[row] * 1e3) + " | " +
           format("%+.1f %%", 100 * (fitted[row] / s.seconds - 1)) + " | " +
           (one_model_out ? format("%.1f", left_out[row] * 1e3) + " | " +
                                format("%+.1f %%", 100 * (left_out[row] / s.seconds - 1))
                          : " | ") +
           " |\n";
  }
  return out;
}

}  // namespace plait::costmodels
